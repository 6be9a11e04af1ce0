// Standalone mode's policy source: a file, re-read when it changes. Kubernetes mounts swap a
// symlink rather than writing the file, so a change is noticed by polling its content too.
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import { InvalidPolicyError, parseCompiledPolicy, type CompiledPolicy } from './compiled.js';

// Only a standalone sidecar reads policy files: a managed one (every injected pod) never loads
// the YAML parser. Its CommonJS build is required on first use, so parsing stays synchronous.
let yaml: typeof import('yaml') | undefined;
const loadYaml = () => (yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

export interface PodIdentity {
  namespace?: string;
  labels: Record<string, string>;
  serviceAccount: string;
}

/** Turns manifests into a policy; supplied by the compiler so this module stays small. */
export type ManifestCompiler = (text: string, pod: PodIdentity) => CompiledPolicy;

export async function loadPolicyFile(
  path: string,
  pod: PodIdentity,
  compileManifests?: ManifestCompiler,
): Promise<CompiledPolicy> {
  const text = await readFile(path, 'utf8');
  return parsePolicyText(text, pod, compileManifests);
}

/**
 * The file holds manifests and no compiler was given: the caller may load the compiler (and its
 * CEL evaluator) now and parse again. A CompiledPolicy never needs it.
 */
export class CompilerNeededError extends InvalidPolicyError {
  constructor() {
    super(['file holds no CompiledPolicy']);
  }
}

export function parsePolicyText(
  text: string,
  pod: PodIdentity,
  compileManifests?: ManifestCompiler,
): CompiledPolicy {
  const values = policyDocuments(text);
  // An empty file is a mistake (or a write caught half way), never "allow nothing".
  if (values.length === 0) throw new InvalidPolicyError(['file holds no policy document']);
  const kinds = values.map((value) => (value as { kind?: unknown }).kind);
  if (values.length === 1 && kinds[0] === 'CompiledPolicy') return parseCompiledPolicy(values[0]);
  if (kinds.includes('CompiledPolicy')) {
    throw new InvalidPolicyError(['a CompiledPolicy file must hold exactly one document']);
  }
  if (!compileManifests) throw new CompilerNeededError();
  return compileManifests(text, pod);
}

/** The text's non-empty YAML or JSON documents as plain values. */
function policyDocuments(text: string): unknown[] {
  const documents = loadYaml().parseAllDocuments(text);
  if (!Array.isArray(documents))
    throw new InvalidPolicyError(['file holds no YAML or JSON document']);
  return documents
    .map((doc) => {
      if (doc.errors.length > 0)
        throw new InvalidPolicyError([
          `not valid YAML or JSON: ${doc.errors[0]?.code ?? 'parse error'}`,
        ]);
      return doc.toJS({ maxAliasCount: 100 }) as unknown;
    })
    .filter((value) => value !== null && value !== undefined);
}

const SETTLE_MS = 50;

export interface PolicyFileWatcher {
  close(): void;
}

/** Calls onText with the file's content whenever it differs from the last content seen. */
export function watchPolicyFile(
  path: string,
  onText: (text: string) => void,
  onError: (error: Error) => void,
  pollMs = 2000,
): PolicyFileWatcher {
  let last: string | undefined;
  let closed = false;
  let checking = false;
  // A change is applied once two reads a moment apart agree: an editor that truncates and then
  // writes would otherwise hand over an empty or half-written file.
  const check = async () => {
    if (checking || closed) return;
    checking = true;
    try {
      let text = await readFile(path, 'utf8');
      while (text !== last) {
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        const again = await readFile(path, 'utf8');
        if (again === text) break;
        text = again;
      }
      if (!closed && text !== last) {
        last = text;
        onText(text);
      }
    } catch (error) {
      if (!closed) onError(error as Error);
    } finally {
      checking = false;
    }
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, () => void check());
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = undefined;
  }
  const timer = setInterval(() => void check(), pollMs);
  timer.unref();
  void check();
  return {
    close() {
      closed = true;
      clearInterval(timer);
      watcher?.close();
    },
  };
}
