// Token estimates without a tokenizer: gpt-tokenizer costs ~500 µs per 4 KiB prompt and ~50 MB of RSS
// (test/bench/tokenizer.ts), far over the sidecar's budget, so input is bounded by bytes instead.
import type { ProviderType } from '../policy/compiled.js';

/**
 * Tokens charged per image, whatever its bytes: a base64 image is far larger than its token cost, and
 * a URL far smaller. The largest per-image costs of current models sit below this.
 */
export const IMAGE_TOKENS = 2_000;

/** Object `type`s that carry an image (OpenAI chat, OpenAI responses, Anthropic). */
const IMAGE_TYPES = new Set(['image_url', 'input_image', 'image']);

/**
 * An upper bound on the request's input tokens: byte-level BPE tokenizers (OpenAI's, Anthropic's) never
 * emit more tokens than the UTF-8 bytes they encode, and the JSON around the text (roles, keys, tool
 * schemas) stands in for the per-message overhead. Image payloads are replaced by IMAGE_TOKENS each.
 * Cost: one walk over the parsed body, no string copies (a few µs for a 4 KiB prompt).
 */
export function estimateInputTokens(
  _providerType: ProviderType,
  body: unknown,
  rawBytes: number,
): number {
  const { imageBytes, images } = scanImages(body);
  return Math.max(1, rawBytes - imageBytes + images * IMAGE_TOKENS);
}

/** Finds image parts and the bytes of their inline payloads; iterative, so deep JSON cannot overflow the stack. */
function scanImages(body: unknown): { imageBytes: number; images: number } {
  let imageBytes = 0;
  let images = 0;
  const stack: unknown[] = [body];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (value.startsWith('data:')) imageBytes += value.length; // base64 is ASCII: length = bytes
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) {
      for (const item of value)
        if (typeof item === 'object' || typeof item === 'string') stack.push(item);
      continue;
    }
    const record = value as Record<string, unknown>;
    if (typeof record.type === 'string' && IMAGE_TYPES.has(record.type)) images += 1;
    // Anthropic inline images and documents: { type: 'base64', media_type, data }
    if (record.type === 'base64' && typeof record.data === 'string') {
      if (typeof record.media_type === 'string' && record.media_type.startsWith('image/'))
        imageBytes += record.data.length;
      continue;
    }
    for (const key in record) {
      const child = record[key];
      if (typeof child === 'object' || typeof child === 'string') stack.push(child);
    }
  }
  return { imageBytes, images };
}

/**
 * Output tokens estimated from produced text when the provider reported none: about four bytes of
 * English per token, and never fewer tokens than the stream's content events (each carries at least one).
 */
export function estimateOutputTokens(textBytes: number, contentEvents: number): number {
  return Math.max(contentEvents, Math.ceil(textBytes / 4));
}
