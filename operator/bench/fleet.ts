// A fleet of simulated sidecars in one process, for scale tests and benchmarks of policy
// distribution: each runs the real managed-mode client with its own token file.
//   node --import tsx operator/bench/fleet.ts '{"url":"https://...","caFile":"...","tokenFiles":[...]}'
// Prints one JSON line per policy a sidecar applies: {"i":3,"version":"sha256:...","at":1700000000000}
import { connectToOperator, type OperatorConnection } from '../../sidecar/control/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';

interface FleetSpec {
  url: string;
  caFile: string;
  tokenFiles: string[];
  /** Sidecars started per 200 ms, as pods start over time rather than in one instant. */
  startRate?: number;
}

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as FleetSpec;
  const sidecars: OperatorConnection[] = [];
  const rate = spec.startRate ?? 50;
  for (const [i, tokenFile] of spec.tokenFiles.entries()) {
    if (i > 0 && i % rate === 0) await new Promise((r) => setTimeout(r, 200));
    sidecars.push(
      connectToOperator({
        url: spec.url,
        tokenFile,
        caFile: spec.caFile,
        log: quiet,
        onPolicy: (policy) => {
          process.stdout.write(
            `${JSON.stringify({ i, version: policy.version, at: Date.now() })}\n`,
          );
        },
      }),
    );
  }
  const stop = async () => {
    await Promise.all(sidecars.map((s) => s.close()));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

void main();
