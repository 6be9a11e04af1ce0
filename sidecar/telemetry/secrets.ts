// Known secret values (provider keys and the like), so every exit can drop or mask them by value.
// Structural allowlists keep secrets out by construction; this is the second, value-based wall.

export type SecretSource = () => Iterable<string>;

/** Values shorter than this are not matched: masking every "abc" would destroy the logs. */
export const MIN_SECRET_LENGTH = 8;
export const SECRET_MASK = '[REDACTED]';

const sources = new Set<SecretSource>();

/**
 * Registers a process-wide source of secret values (e.g. the credential store), consulted by every
 * logger and the telemetry exporters. Returns a function that unregisters it.
 */
export function registerSecretSource(source: SecretSource): () => void {
  sources.add(source);
  return () => sources.delete(source);
}

/**
 * knownSecrets, returning the same array for as long as the values are unchanged, so a caller can
 * keep work derived from them (sanitized attribute sets) and re-check it by identity. It runs on
 * every request, so an unchanged set costs a comparison, not a new sorted array.
 */
export function createSecretsView(extra?: SecretSource): () => readonly string[] {
  let last: readonly string[] = [];
  let lastRaw: string[] = [];
  let raw: string[] = [];
  return () => {
    raw.length = 0;
    collectSecrets(raw, extra);
    if (raw.length === lastRaw.length && raw.every((v, i) => v === lastRaw[i])) return last;
    last = longestFirst(raw);
    [lastRaw, raw] = [raw, lastRaw];
    return last;
  };
}

/** The current secret values from the registered sources and `extra`, longest first. */
export function knownSecrets(extra?: SecretSource): string[] {
  const raw: string[] = [];
  collectSecrets(raw, extra);
  return longestFirst(raw);
}

/** Every value of every source, in source order, duplicates included. */
function collectSecrets(into: string[], extra: SecretSource | undefined): void {
  const add = (source: SecretSource) => {
    try {
      for (const v of source())
        if (typeof v === 'string' && v.length >= MIN_SECRET_LENGTH) into.push(v);
    } catch {
      // A failing source must not take logging down; the structural allowlists still hold.
    }
  };
  for (const source of sources) add(source);
  if (extra) add(extra);
}

/** Longest first, so a secret that contains another is masked whole. */
function longestFirst(values: readonly string[]): string[] {
  return [...new Set(values)].sort((a, b) => b.length - a.length);
}

export function containsSecret(text: string, secrets: readonly string[]): boolean {
  for (const s of secrets) if (text.includes(s)) return true;
  return false;
}

/** Replaces every occurrence of every secret with a mask. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(SECRET_MASK);
  return out;
}
