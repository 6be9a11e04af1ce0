// `make bench`: the sidecar against a direct call and a bare http-proxy-3 pass-through, in one run,
// on the same fake provider; plus the pure cores' own figures. Prints a Markdown report.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { freePort, startSidecar, type RunningSidecar } from '../support/sidecar.js';
import {
  measureLatency,
  measureThroughput,
  type LatencyResult,
  type Target,
  type ThroughputResult,
} from './http-load.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CHAT = '/openai/v1/chat/completions';
const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say hello.' },
  ],
  max_tokens: 64,
});

interface Row {
  name: string;
  latency: LatencyResult;
  throughput: ThroughputResult;
  rssMb?: number;
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const sidecars: RunningSidecar[] = [];
  try {
    const fakeUrl = await startChild(
      children,
      ['--import', 'tsx', join(ROOT, 'test/fake-provider/main.ts'), '--port', '0'],
      /^http:/,
    );
    const barePort = await freePort();
    await startChild(
      children,
      [
        '--import',
        'tsx',
        join(ROOT, 'test/bench/bare-proxy.ts'),
        '--target',
        fakeUrl,
        '--port',
        String(barePort),
      ],
      /^ready/,
    );
    const keyDir = join(ROOT, '.dev');
    mkdirSync(keyDir, { recursive: true });
    writeFileSync(join(keyDir, 'bench.key'), 'bench-key-for-the-fake-provider\n');
    const sidecar = await startSidecar({
      policy: benchPolicy(fakeUrl, join(keyDir, 'bench.key')),
      args: ['--log-level', 'warn'],
    });
    sidecars.push(sidecar);

    const targets: Array<Target & { pid?: number }> = [
      { name: 'direct to the provider', url: `${fakeUrl}/v1/chat/completions`, body: BODY },
      {
        name: 'bare http-proxy-3 pass-through',
        url: `http://127.0.0.1:${barePort}/v1/chat/completions`,
        body: BODY,
      },
      {
        name: 'llmproxy sidecar (policy enforced)',
        url: `${sidecar.url}${CHAT}`,
        body: BODY,
        pid: sidecar.process.pid,
      },
    ];
    const rows: Row[] = [];
    for (const target of targets) {
      log(`measuring ${target.name} (${SECONDS}s at 1 connection, ${SECONDS}s at 16)`);
      await measureThroughput(target, 4, 1); // warm up JIT and keep-alive pools
      const latency = await measureLatency(target, SECONDS);
      const throughput = await measureThroughput(target, 16, SECONDS);
      if (throughput.errors > 0 || throughput.non2xx > 0)
        throw new Error(
          `${target.name}: ${throughput.errors} errors, ${throughput.non2xx} non-2xx responses`,
        );
      rows.push({
        name: target.name,
        latency,
        throughput,
        ...(target.pid ? { rssMb: rssMb(target.pid) } : {}),
      });
    }
    const report = render(rows, await extraSections());
    process.stdout.write(`\n${report}\n`);
    writeFileSync(join(keyDir, 'bench.md'), report);
    log(`report written to .dev/bench.md; record notable runs in docs/benchmarks.md`);
  } finally {
    for (const sidecar of sidecars) await sidecar.stop();
    for (const child of children) child.kill('SIGTERM');
  }
}

function benchPolicy(fakeUrl: string, keyFile: string): Record<string, unknown> {
  return {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'CompiledPolicy',
    providers: [
      {
        name: 'openai',
        type: 'openai',
        baseURL: fakeUrl,
        credentials: { file: { path: keyFile } },
        models: {
          allow: [{ pattern: 'gpt-4o-mini', maxOutputTokens: 1024 }, { pattern: 'gpt-4.1-*' }],
          deny: [{ pattern: '*-realtime-*' }],
        },
      },
    ],
  };
}

/** Figures from the pure cores' own benchmarks, where those modules exist. */
async function extraSections(): Promise<string[]> {
  const sections: string[] = [];
  const compiler = await import('./compiler.js').catch(() => undefined);
  if (compiler?.benchCompiler) {
    log('measuring the policy compiler at scale');
    const r = (await compiler.benchCompiler()) as { pods: number; policies: number; ms: number };
    sections.push(
      `## Policy compiler\n\nCompiling for ${r.pods.toLocaleString('en')} pods against ${r.policies.toLocaleString('en')} policies in one namespace: **${r.ms.toFixed(0)} ms** (target: under 1 s).`,
    );
  }
  return sections;
}

function render(rows: Row[], sections: string[]): string {
  const bare = rows.find((r) => r.name.startsWith('bare'));
  const direct = rows.find((r) => r.name.startsWith('direct'));
  const sidecar = rows.find((r) => r.name.startsWith('llmproxy'));
  const lines = [
    '# llmproxy benchmark',
    '',
    `Machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}. ` +
      `Load generator, fake provider, baseline and sidecar all share this machine; ${SECONDS}s per measurement.`,
    '',
    '| target | 1 conn req/s | 1 conn p50 | 1 conn p99 | 16 conn req/s | 16 conn p50 | 16 conn p99 | RSS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.latency.rps.toFixed(0)} | ${(r.latency.p50Us / 1000).toFixed(3)} ms | ${(r.latency.p99Us / 1000).toFixed(3)} ms | ${r.throughput.rps.toFixed(0)} | ${r.throughput.p50Ms} ms | ${r.throughput.p99Ms} ms | ${r.rssMb ? `${r.rssMb.toFixed(0)} MB` : ''} |`,
    ),
  ];
  if (bare && sidecar && direct) {
    const ratio = sidecar.throughput.rps / bare.throughput.rps;
    const addedVsBare = (sidecar.latency.p50Us - bare.latency.p50Us) / 1000;
    const addedVsDirect = (sidecar.latency.p50Us - direct.latency.p50Us) / 1000;
    const check = (ok: boolean) => (ok ? 'met' : '**missed**');
    lines.push(
      '',
      '| target | figure | |',
      '|---|---:|---|',
      `| throughput at 16 connections ≥ 75% of the bare pass-through | ${(ratio * 100).toFixed(0)}% | ${check(ratio >= 0.75)} |`,
      `| added p50 latency at 1 connection < 0.3 ms (vs bare pass-through) | ${addedVsBare.toFixed(3)} ms | ${check(addedVsBare < 0.3)} |`,
      `| added p50 latency at 1 connection (vs direct) | ${addedVsDirect.toFixed(3)} ms | |`,
      `| sidecar RSS < 80 MB | ${sidecar.rssMb?.toFixed(0)} MB | ${check((sidecar.rssMb ?? Infinity) < 80)} |`,
    );
  }
  return [...lines, '', ...sections.flatMap((s) => [s, ''])].join('\n');
}

/** Peak resident set of a process, in MB (Linux). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function startChild(
  children: ChildProcess[],
  args: string[],
  ready: RegExp,
): Promise<string> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let line = '';
  child.stdout?.on('data', (chunk: Buffer) => (line += chunk.toString()));
  const deadline = Date.now() + 15_000;
  while (!ready.test(line.trim())) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${args.join(' ')} did not start`);
    await Promise.race([once(child.stdout!, 'data'), new Promise((r) => setTimeout(r, 100))]);
  }
  return line.trim().split('\n')[0] as string;
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).message}\n`);
  process.exit(1);
});
