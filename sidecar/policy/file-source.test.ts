import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { compileManifestStream } from './compiler/index.js';
import { holdsManifests, parsePolicyText } from './file-source.js';

const examples = readFileSync('examples/standalone/llmpolicy.yaml', 'utf8');
const pod = { labels: { app: 'demo' }, serviceAccount: 'default' };

describe('parsePolicyText', () => {
  it('takes a CompiledPolicy as it is, in YAML or JSON', () => {
    const compiled = compileManifestStream(examples, pod);
    const { version: _version, ...withoutVersion } = compiled;
    expect(parsePolicyText(JSON.stringify(withoutVersion), pod)).toEqual(compiled);
    expect(parsePolicyText(stringify(withoutVersion), pod)).toEqual(compiled);
  });

  it('compiles manifests with the compiler it is given, and only then', () => {
    expect(parsePolicyText(examples, pod, compileManifestStream)).toEqual(
      compileManifestStream(examples, pod),
    );
    expect(() => parsePolicyText(examples, pod)).toThrow(/no CompiledPolicy/);
  });

  it('refuses an empty file rather than enforcing "allow nothing"', () => {
    expect(() => parsePolicyText('', pod, compileManifestStream)).toThrow(/no policy document/);
    expect(() => parsePolicyText('---\n---\n', pod, compileManifestStream)).toThrow(
      /no policy document/,
    );
  });

  it('refuses a CompiledPolicy next to other documents', () => {
    const compiled = compileManifestStream(examples, pod);
    expect(() => parsePolicyText(`${stringify(compiled)}---\n${stringify(compiled)}`, pod)).toThrow(
      /exactly one document/,
    );
  });
});

describe('holdsManifests', () => {
  it('is true for manifests only, so a CompiledPolicy in any layout never loads the compiler', () => {
    const compiled = compileManifestStream(examples, pod);
    expect(holdsManifests(examples)).toBe(true);
    expect(holdsManifests(JSON.stringify(compiled))).toBe(false);
    expect(holdsManifests(JSON.stringify(compiled, null, 2))).toBe(false);
    expect(holdsManifests(stringify(compiled))).toBe(false);
    expect(holdsManifests(`${stringify(compiled)}---\n${examples}`)).toBe(false);
  });

  it('is false for text that does not parse or is empty: parsePolicyText explains those', () => {
    expect(holdsManifests('{ not: [json')).toBe(false);
    expect(holdsManifests('')).toBe(false);
  });
});
