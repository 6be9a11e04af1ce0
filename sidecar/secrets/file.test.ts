import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKey } from './file.js';
import type { Logger } from '../telemetry/log.js';

const canary = (): string => ['sk', 'unit', randomBytes(8).toString('hex')].join('-');

function recordingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (message: string, fields?: object) =>
    lines.push(JSON.stringify({ level, message, ...fields }));
  return {
    lines,
    log: {
      error: record('error'),
      warn: record('warn'),
      info: record('info'),
      debug: record('debug'),
    },
  };
}

async function eventually(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('FileKey', () => {
  let dir: string;
  let source: FileKey | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmproxy-filekey-'));
  });
  afterEach(async () => {
    source?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the key without its trailing newline and never logs it', async () => {
    const key = canary();
    const path = join(dir, 'key');
    await writeFile(path, `${key}\n`);
    const { log, lines } = recordingLog();
    source = new FileKey({ path, log });
    source.start();
    await expect(source.get()).resolves.toBe(key);
    expect(lines.join('\n')).not.toContain(key);
  });

  it('picks up a Kubernetes-style symlink swap', async () => {
    // <dir>/key -> ..data/key, ..data -> ..v1; the kubelet replaces ..data atomically.
    const first = canary();
    const second = canary();
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'key'), first);
    await symlink('..v1', join(dir, '..data'));
    await symlink(join('..data', 'key'), join(dir, 'key'));
    const { log, lines } = recordingLog();
    source = new FileKey({ path: join(dir, 'key'), log, pollIntervalMs: 200 });
    source.start();
    await expect(source.get()).resolves.toBe(first);

    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'key'), second);
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await eventually(() => source?.peek() === second);
    expect(source.values()).toEqual([second]);
    expect(lines.join('\n')).not.toContain(first);
    expect(lines.join('\n')).not.toContain(second);
  });

  it('fails with file_unreadable for a missing file and recovers when it appears', async () => {
    const path = join(dir, 'missing');
    source = new FileKey({ path, log: recordingLog().log, pollIntervalMs: 100 });
    source.start();
    await expect(source.get()).rejects.toMatchObject({ reason: 'file_unreadable' });
    expect(source.ready()).toBe(false);
    const key = canary();
    await writeFile(path, key);
    await eventually(() => source?.peek() === key);
    expect(source.ready()).toBe(true);
  });

  it('refuses an empty file', async () => {
    const path = join(dir, 'empty');
    await writeFile(path, '\n');
    source = new FileKey({ path, log: recordingLog().log });
    source.start();
    await expect(source.get()).rejects.toMatchObject({ reason: 'empty' });
  });
});
