// `make crds` (second half): writes compiled-check.generated.ts from the CompiledPolicy schema.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderPolicyCheck } from './compiled-schema.js';

const path = join(dirname(fileURLToPath(import.meta.url)), 'compiled-check.generated.ts');
writeFileSync(path, renderPolicyCheck());
process.stdout.write('wrote sidecar/policy/compiled-check.generated.ts\n');
