// Reads a request body without ever holding more than the limit.
import type { IncomingMessage } from 'node:http';
import { ProxyError } from './errors.js';

export class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection before its request body arrived');
  }
}

/**
 * A declared Content-Length over the limit is refused before a byte is read; a chunked body is
 * refused as soon as it crosses the limit. Compressed bodies are refused: they defeat the limit.
 */
export function readBoundedBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    return Promise.reject(
      new ProxyError(
        'unsupported_media_type',
        'compressed request bodies are not accepted; send identity encoding',
      ),
    );
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onGone = () => {
      cleanup();
      reject(new ClientGoneError());
    };
    const onClose = () => {
      if (!req.complete) onGone();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onClose);
  });
}

function tooLarge(limit: number): ProxyError {
  return new ProxyError('request_too_large', `request body exceeds the ${limit}-byte limit`);
}
