// `make crds`: writes the generated CRDs into crds/ and the chart, from crds/v1alpha1/*.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_DIRECTORIES, renderCrds } from './crd.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

for (const directory of CRD_DIRECTORIES) {
  mkdirSync(join(root, directory), { recursive: true });
  for (const { fileName, text } of renderCrds()) {
    const path = join(directory, fileName);
    writeFileSync(join(root, path), text);
    process.stdout.write(`wrote ${path}\n`);
  }
}
