// Caller and end-user identifiers leave the process only as keyed hashes: stable within a
// deployment for correlation, useless for identification without the key.
import { createHmac } from 'node:crypto';

/** 128 bits of HMAC-SHA256: collision-free in practice for user counts, half the size in storage. */
export const IDENTIFIER_HASH_HEX_LENGTH = 32;
export const MIN_HMAC_KEY_BYTES = 16;
const HASH_CACHE_SIZE = 4096;

export function createIdentifierHasher(key: Buffer): (value: string) => string {
  if (key.length < MIN_HMAC_KEY_BYTES)
    throw new RangeError(`the identifier HMAC key needs at least ${MIN_HMAC_KEY_BYTES} bytes`);
  const copy = Buffer.from(key);
  // A pod sees few distinct callers and an HMAC costs microseconds: remember recent results.
  const cache = new Map<string, string>();
  return (value) => {
    let hashed = cache.get(value);
    if (hashed === undefined) {
      hashed = createHmac('sha256', copy)
        .update(value, 'utf8')
        .digest('hex')
        .slice(0, IDENTIFIER_HASH_HEX_LENGTH);
      if (cache.size >= HASH_CACHE_SIZE) cache.clear();
      cache.set(value, hashed);
    }
    return hashed;
  };
}
