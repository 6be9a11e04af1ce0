import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { compileManifestStream } from './compiler/index.js';
import { InvalidPolicyError } from './compiled.js';
import { CompilerNeededError, parsePolicyText } from './file-source.js';

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

describe('CompilerNeededError', () => {
  it('is thrown only for manifests without a compiler, so a CompiledPolicy never loads it', () => {
    const compiled = compileManifestStream(examples, pod);
    expect(() => parsePolicyText(examples, pod)).toThrow(CompilerNeededError);
    for (const text of [
      JSON.stringify(compiled),
      JSON.stringify(compiled, null, 2),
      stringify(compiled),
    ])
      expect(parsePolicyText(text, pod)).toEqual(compiled);
  });

  it('is not thrown for text that does not parse, is empty or mixes kinds: those are explained', () => {
    const compiled = compileManifestStream(examples, pod);
    for (const text of ['{ not: [json', '', `${stringify(compiled)}---\n${examples}`]) {
      expect(() => parsePolicyText(text, pod)).toThrow(InvalidPolicyError);
      expect(() => parsePolicyText(text, pod)).not.toThrow(CompilerNeededError);
    }
  });
});
