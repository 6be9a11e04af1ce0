// What the Dockerfile ships, checked without a container engine: the build stage copies only
// crds/, sidecar/ and operator/ and prunes devDependencies, so everything the built entry points
// import must come from those folders or from production dependencies.
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  bin: Record<string, string>;
};

function builtFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return builtFiles(full);
    return entry.name.endsWith('.js') && !entry.name.endsWith('.test.js') ? [full] : [];
  });
}

/** `import x from 'pkg/sub'`, `import('pkg')`, `export * from 'pkg'`: the package part. */
function importedPackages(source: string): string[] {
  const names = new Set<string>();
  const pattern = /(?:from\s+|import\s*\(\s*|import\s+)['"]([^'".][^'"]*)['"]/g;
  for (const match of source.matchAll(pattern)) {
    const specifier = match[1] ?? '';
    if (specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
    const parts = specifier.split('/');
    names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? ''));
  }
  return [...names];
}

describe('the image contents', () => {
  const dist = path.join(ROOT, 'dist');

  it('copies every source folder the build needs', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    for (const folder of ['crds', 'sidecar', 'operator']) {
      expect(dockerfile).toContain(`COPY ${folder} ./${folder}`);
      expect(existsSync(path.join(ROOT, folder))).toBe(true);
    }
    for (const name of ['sidecar', 'operator']) {
      expect(dockerfile).toContain('for name in sidecar operator');
      expect(pkg.bin[`llmproxy-${name}`]).toBe(`dist/${name}/main.js`);
    }
  });

  it('imports only production dependencies from the built code', () => {
    expect(existsSync(dist)).toBe(true);
    const offenders: string[] = [];
    const seen = new Set<string>();
    for (const file of builtFiles(dist)) {
      for (const name of importedPackages(readFileSync(file, 'utf8'))) {
        seen.add(name);
        if (!(name in pkg.dependencies)) offenders.push(`${path.relative(ROOT, file)}: ${name}`);
      }
    }
    // The scan sees the adapters' SDKs, so an empty offender list means something.
    expect([...seen]).toEqual(
      expect.arrayContaining([
        '@kubernetes/client-node',
        'ioredis',
        '@aws-sdk/client-secrets-manager',
      ]),
    );
    expect(offenders).toEqual([]);
  });

  it('builds nothing from test/ into the image', () => {
    expect(existsSync(path.join(dist, 'test'))).toBe(false);
  });
});
