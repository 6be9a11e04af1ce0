// Prompt and completion text for spans, only when a policy opts in: every detector redacts (whatever
// the policy's own dataProtection says), known secrets are masked, and the result is truncated.
import type { ProviderType } from '../policy/compiled.js';
import { mapRequestText, mapResponseText, redactAll } from '../protection/index.js';
import { maskSecrets } from './secrets.js';

export const MAX_CAPTURED_CHARS = 1024;

export function captureText(
  providerType: ProviderType,
  kind: 'input' | 'output',
  body: unknown,
  secrets: readonly string[],
): string | undefined {
  const parts: string[] = [];
  let length = 0;
  const collect = (text: string) => {
    if (length < MAX_CAPTURED_CHARS) {
      parts.push(text);
      length += text.length;
    }
    return text;
  };
  if (kind === 'input') mapRequestText(providerType, body, collect);
  else mapResponseText(providerType, body, collect);
  if (parts.length === 0) return undefined;
  // Mask before cutting so a secret split by the cut is still masked; redact before cutting so a
  // half-cut entity is still recognized.
  const joined = maskSecrets(redactAll(parts.join('\n')), secrets);
  return joined.length > MAX_CAPTURED_CHARS ? `${joined.slice(0, MAX_CAPTURED_CHARS)}…` : joined;
}
