// Turns a raw secret into the key a provider needs, failing with a reason rather than a value.
import { SecretReadError } from './errors.js';

/**
 * The key inside a secret string: the whole string, or one string field of a JSON object.
 * Error reasons say what is wrong with the shape; nothing of the content is ever quoted.
 */
export function extractKey(secretString: string | undefined, jsonKey?: string): string {
  if (secretString === undefined) throw new SecretReadError('not_string');
  if (jsonKey === undefined) return nonEmpty(trimTrailingNewlines(secretString));
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString);
  } catch {
    throw new SecretReadError('not_json');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SecretReadError('not_json');
  }
  if (!Object.prototype.hasOwnProperty.call(parsed, jsonKey)) {
    throw new SecretReadError('json_key_missing');
  }
  const field = (parsed as Record<string, unknown>)[jsonKey];
  if (typeof field !== 'string') throw new SecretReadError('not_string');
  return nonEmpty(trimTrailingNewlines(field));
}

/** Secret files and pasted secrets often end in a newline no provider expects. */
export function trimTrailingNewlines(value: string): string {
  return value.replace(/[\r\n]+$/, '');
}

function nonEmpty(value: string): string {
  if (value.length === 0) throw new SecretReadError('empty');
  return value;
}
