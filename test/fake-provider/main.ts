// Runs the fake provider on its own, for `make dev` and `make bench`.
import { parseArgs } from 'node:util';
import { startFakeProvider } from './server.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
const provider = await startFakeProvider({ port: Number(values.port), record: false });
process.stdout.write(`${provider.url}\n`);
process.once('SIGTERM', () => void provider.close().then(() => process.exit(0)));
process.once('SIGINT', () => void provider.close().then(() => process.exit(0)));
