// The JSON Patch an admission response carries, built by diffing the object the API server sent
// with the one we want stored. fast-json-patch escapes `~` and `/` in keys (RFC 6901), which
// annotation keys such as `llmproxy.io/status` need.
import fastJsonPatch from 'fast-json-patch';

export type PatchOperation = fastJsonPatch.Operation;

/** The operations turning `original` into `mutated`; empty when they are equal. */
export function diffPatch(original: unknown, mutated: unknown): PatchOperation[] {
  return fastJsonPatch.compare(original as object, mutated as object);
}

/** Applies a patch to a copy (the API server's side of it); used by tests and reinvocation checks. */
export function applyPatch<T>(document: T, patch: PatchOperation[]): T {
  return fastJsonPatch.applyPatch(structuredClone(document), patch, true, false).newDocument;
}
