// `make prices`: writes price-table.generated.ts from the installed @pydantic/genai-prices.
import { writeFileSync } from 'node:fs';
import { renderPriceTable } from './price-table-source.js';

writeFileSync(new URL('./price-table.generated.ts', import.meta.url), renderPriceTable());
process.stdout.write('wrote sidecar/metering/price-table.generated.ts\n');
