// `make bench`: the sidecar against a direct call and a bare http-proxy-3 pass-through, in one run,
// on the same fake provider, in the variants each issue names a number for; plus the pure cores'
// own figures. Prints a Markdown report and writes it to .dev/bench.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { freePort, startSidecar, type RunningSidecar } from '../support/sidecar.js';
import { startMoto } from '../support/moto.js';
import { startRedis } from '../support/redis.js';
import { samplePrompt } from './protection.js';
import { roundsNeeded, verdict as signVerdict } from './verdict.js';
import { joinSlices, sliceOrder } from './slices.js';
import {
  cpuMicros,
  measureLatency,
  measureThroughput,
  type LatencyResult,
  type Target,
  type ThroughputResult,
} from './http-load.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DEV = join(ROOT, '.dev');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/**
 * Targets are measured round-robin and reported as medians, so load drift hits all alike. Nine
 * rounds let one round caught in a burst of the machine's noise leave a verdict standing (8 of 9).
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
/**
 * Each round's 16-connection window is cut into slices taken in mirrored order (A B C … C B A,
 * twice), so targets compared with each other run within a second of each other and a linear
 * drift hits both alike. Whole 3 s windows, one target after another, let the host's bursts of
 * noise (seconds long here) land on one side of a pair: paired rounds ranged 36–109%.
 */
const SLICES = Number(process.env.BENCH_SLICES ?? 4);
const CHAT = '/openai/v1/chat/completions';
const SMALL = chatBody('Say hello.');
const PROMPT_4K = chatBody(samplePrompt(4096, false));

interface Row {
  name: string;
  latency: LatencyResult;
  throughput: ThroughputResult;
  /**
   * Every round's 16-connection req/s and 1-connection p50, for the verdicts' noise bounds, and
   * the proxy's CPU time per request in the 16-connection window (none for the direct call).
   */
  rounds: { rps: number[]; p50Us: number[]; cpuUs: number[] };
  rssMb?: number;
}

interface Variant {
  name: string;
  body: string;
  policy?: Record<string, unknown>;
  args?: string[];
  env?: Record<string, string>;
}

/**
 * The load generator and the fake provider on one core, the proxy under test alone on the other
 * (Linux taskset, two cores or more; BENCH_PIN=0 turns it off). Sharing both cores let the
 * three compete, and identical runs differed by up to 45%. The proxies not under test wait on
 * the first core, so their timers and idle-time GCs never share the measured one.
 */
const PINNED = process.env.BENCH_PIN !== '0' && cpus().length >= 2 && hasTaskset();

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Moves every thread of `pid` to `cpu`; children started afterwards inherit it. */
function pin(pid: number | undefined, cpu: number): void {
  if (!PINNED || pid === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const stops: Array<() => Promise<unknown>> = [];
  try {
    mkdirSync(DEV, { recursive: true });
    pin(process.pid, 0);
    const children: ChildProcess[] = [];
    stops.push(async () => children.forEach((c) => c.kill('SIGTERM')));
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
    const barePid = children.at(-1)?.pid;
    const keyFile = join(DEV, 'bench.key');
    writeFileSync(keyFile, 'bench-key-for-the-fake-provider\n');
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const moto = await startMoto();
    stops.push(() => moto.stop());
    await moto.secrets.create('bench/openai', 'bench-key-for-the-fake-provider');

    const base = benchPolicy(fakeUrl, { file: { path: keyFile } });
    const limits = [
      {
        id: 'bench/rpm',
        requestsPerMinute: 10_000_000,
        tokensPerMinute: 1_000_000_000,
        maxConcurrent: 1000,
        scope: 'pod',
      },
    ];
    const variants: Variant[] = [
      { name: 'sidecar, policy enforced', body: SMALL, policy: base },
      {
        name: 'sidecar + rate limits (per pod)',
        body: SMALL,
        policy: { ...base, rateLimits: limits },
      },
      {
        name: 'sidecar, key from Secrets Manager',
        body: SMALL,
        policy: benchPolicy(fakeUrl, {
          awsSecretsManager: { secretId: 'bench/openai', region: moto.region },
        }),
        env: moto.env,
      },
      {
        name: 'sidecar + rate limits (shared, Redis)',
        body: SMALL,
        policy: { ...base, rateLimits: [{ ...limits[0], id: 'bench/shared', scope: 'shared' }] },
        args: ['--redis-url', redis.url],
      },
      { name: 'sidecar, 4 KiB prompt', body: PROMPT_4K, policy: base },
      {
        name: 'sidecar, 4 KiB prompt + data protection',
        body: PROMPT_4K,
        policy: { ...base, dataProtection: { pii: 'redact', secrets: 'block' } },
      },
    ];

    /** `proxyPid`: the process under test, moved alone onto the second core while measured. */
    const targets: Array<Target & { pid?: number; proxyPid?: number }> = [
      { name: 'direct to the provider', url: `${fakeUrl}/v1/chat/completions`, body: SMALL },
      {
        name: 'bare http-proxy-3 pass-through',
        url: `http://127.0.0.1:${barePort}/v1/chat/completions`,
        body: SMALL,
        proxyPid: barePid,
      },
    ];
    for (const variant of variants) {
      const sidecar: RunningSidecar = await startSidecar({
        policy: variant.policy,
        args: ['--log-level', 'warn', ...(variant.args ?? [])],
        env: variant.env,
      });
      stops.push(() => sidecar.stop());
      targets.push({
        name: variant.name,
        url: `${sidecar.url}${CHAT}`,
        body: variant.body,
        pid: sidecar.process.pid,
        proxyPid: sidecar.process.pid,
      });
    }
    const samples = new Map<
      string,
      Array<{ latency: LatencyResult; throughput: ThroughputResult; cpuUs: number }>
    >();
    const underTest = (target: (typeof targets)[number]) => {
      for (const other of targets) if (other !== target) pin(other.proxyPid, 0);
      pin(target.proxyPid, 1);
    };
    for (const target of targets) {
      underTest(target);
      await measureThroughput(target, 4, 1); // warm up JIT and pools
    }
    for (let round = 1; round <= ROUNDS; round += 1) {
      log(`round ${round}/${ROUNDS}: one connection, each target in turn`);
      const latencies = new Map<string, LatencyResult>();
      for (const target of targets) {
        underTest(target);
        latencies.set(target.name, await measureLatency(target, SECONDS));
      }
      log(`round ${round}/${ROUNDS}: 16 connections, ${SLICES} slices per target`);
      const slices = new Map<string, Array<{ throughput: ThroughputResult; cpuUs: number }>>();
      for (const target of sliceOrder(targets, SLICES)) {
        underTest(target);
        const cpuBefore = target.proxyPid ? cpuMicros(target.proxyPid) : NaN;
        const throughput = await measureThroughput(target, 16, SECONDS / SLICES);
        const cpuUs = target.proxyPid ? cpuMicros(target.proxyPid) - cpuBefore : NaN;
        if (throughput.errors > 0 || throughput.non2xx > 0) {
          throw new Error(
            `${target.name}: ${throughput.errors} errors, ${throughput.non2xx} non-2xx responses (by status: ${JSON.stringify(throughput.statuses)})`,
          );
        }
        slices.set(target.name, [...(slices.get(target.name) ?? []), { throughput, cpuUs }]);
      }
      for (const target of targets) {
        const parts = slices.get(target.name) ?? [];
        const throughput = joinSlices(parts.map((p) => p.throughput));
        const cpuUs = parts.reduce((sum, p) => sum + p.cpuUs, 0) / throughput.requests;
        samples.set(target.name, [
          ...(samples.get(target.name) ?? []),
          { latency: latencies.get(target.name) as LatencyResult, throughput, cpuUs },
        ]);
      }
    }
    const rows: Row[] = targets.map((target) => {
      const runs = samples.get(target.name) ?? [];
      return {
        name: target.name,
        latency: medianBy(
          runs.map((r) => r.latency),
          (l) => l.p50Us,
        ),
        throughput: medianBy(
          runs.map((r) => r.throughput),
          (t) => t.rps,
        ),
        rounds: {
          rps: runs.map((r) => r.throughput.rps),
          p50Us: runs.map((r) => r.latency.p50Us),
          cpuUs: runs.map((r) => r.cpuUs),
        },
        ...(target.pid ? { rssMb: rssMb(target.pid) } : {}),
      };
    });
    const report = render(rows, await extraSections());
    process.stdout.write(`\n${report}\n`);
    writeFileSync(join(DEV, 'bench.md'), report);
    log('report written to .dev/bench.md; record notable runs in docs/benchmarks.md');
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

/** The run whose key figure is the median of the runs. */
function medianBy<T>(runs: T[], key: (run: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor(sorted.length / 2)] as T;
}

function chatBody(prompt: string): string {
  return JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: prompt },
    ],
    max_tokens: 64,
  });
}

function benchPolicy(
  fakeUrl: string,
  credentials: Record<string, unknown>,
): Record<string, unknown> {
  return {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'CompiledPolicy',
    providers: [
      {
        name: 'openai',
        type: 'openai',
        baseURL: fakeUrl,
        credentials,
        models: {
          allow: [{ pattern: 'gpt-4o-mini', maxOutputTokens: 1024 }, { pattern: 'gpt-4.1-*' }],
          deny: [{ pattern: '*-realtime-*' }],
        },
      },
    ],
  };
}

/** Figures from the pure cores' own benchmarks. */
async function extraSections(): Promise<string[]> {
  log('measuring the policy compiler at scale');
  const { benchCompiler } = await import('./compiler.js');
  const r = await benchCompiler();
  const { benchProtection } = await import('./protection.js');
  const protection = benchProtection(4096);
  return [
    `## Policy compiler\n\nCompiling for ${r.pods.toLocaleString('en')} pods against ${r.policies.toLocaleString('en')} policies in one namespace: **${r.ms.toFixed(0)} ms** (target: under 1 s; load average ${loadavg()[0]?.toFixed(1)}).`,
    [
      '## Data protection detectors (4 KiB prompt, in-process)',
      '',
      '| case | µs per call | µs per KiB |',
      '|---|---:|---:|',
      ...protection.map(
        (p) => `| ${p.name} | ${p.microsPerCall.toFixed(1)} | ${p.microsPerKiB.toFixed(1)} |`,
      ),
    ].join('\n'),
  ];
}

function render(rows: Row[], sections: string[]): string {
  const by = (prefix: string) => rows.find((r) => r.name === prefix);
  const bare = by('bare http-proxy-3 pass-through');
  const direct = by('direct to the provider');
  const sidecar = by('sidecar, policy enforced');
  const limited = by('sidecar + rate limits (per pod)');
  const shared = by('sidecar + rate limits (shared, Redis)');
  const aws = by('sidecar, key from Secrets Manager');
  const big = by('sidecar, 4 KiB prompt');
  const dlp = by('sidecar, 4 KiB prompt + data protection');
  const ms = (us: number) => `${(us / 1000).toFixed(3)} ms`;
  /**
   * Comparisons are paired: in each round the two targets' slices alternated, so the machine's
   * drift between rounds (large here) cancels within a pair.
   */
  const ratios = (a: Row, b: Row) =>
    a.rounds.rps.map((rps, i) => (rps / (b.rounds.rps[i] ?? NaN)) * 100);
  const addedLatencies = (a: Row, b: Row) =>
    a.rounds.p50Us.map((p50, i) => p50 - (b.rounds.p50Us[i] ?? NaN));
  const median = (values: number[]) =>
    [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)] ?? NaN;
  /** A verdict the run's own noise cannot flip (verdict.ts); otherwise only the rounds. */
  const verdict = (values: number[], ok: (v: number) => boolean) =>
    ({ met: 'met', missed: '**missed**', noise: "within this run's noise" })[
      signVerdict(values, ok)
    ];
  const figure = (values: number[], unit: (v: number) => string) =>
    `${unit(median(values))}${ROUNDS > 1 ? ` (rounds: ${values.map(unit).join(', ')})` : ''}`;
  const percent = (v: number) => `${v.toFixed(0)}%`;
  const cpu = (us: number) => (Number.isFinite(us) ? `${us.toFixed(0)} µs` : '');
  const lines = [
    '# llmproxy benchmark',
    '',
    `Machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the end. ` +
      `Load generator, fake provider, baseline and sidecars share this machine. ${PINNED ? 'The load generator, fake provider, Redis and moto run on CPU 0 and the proxy under test alone on CPU 1, the other proxies waiting on CPU 0 (taskset). ' : ''}Each target was measured in ${ROUNDS} rounds (${SECONDS}s at 1 connection, one target after another; then ${SECONDS}s at 16 connections in ${SLICES} slices taken in mirrored order, so compared targets alternate within seconds) and the median round is shown. Sidecars run as injected (NODE_OPTIONS heap settings) with --log-level warn (no access line per request).`,
    '',
    '| target | 1 conn req/s | 1 conn p50 | 1 conn p99 | 16 conn req/s | 16 conn p50 | 16 conn p99 | 16 conn CPU per request | peak RSS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.latency.rps.toFixed(0)} | ${ms(r.latency.p50Us)} | ${ms(r.latency.p99Us)} | ${r.throughput.rps.toFixed(0)} | ${r.throughput.p50Ms} ms | ${r.throughput.p99Ms} ms | ${cpu(median(r.rounds.cpuUs))} | ${r.rssMb ? `${r.rssMb.toFixed(0)} MB` : ''} |`,
    ),
    '',
    '| target | figure: median of the rounds (each round) | |',
    '|---|---:|---|',
  ];
  if (bare && sidecar && direct) {
    const ratio = ratios(sidecar, bare);
    const added = addedLatencies(sidecar, bare);
    lines.push(
      `| throughput at 16 connections ≥ 75% of the bare pass-through | ${figure(ratio, percent)} | ${verdict(ratio, (v) => v >= 75)} |`,
      `| added p50 latency at 1 connection < 0.3 ms (vs bare pass-through) | ${figure(added, ms)} | ${verdict(added, (v) => v < 300)} |`,
      `| added p50 latency at 1 connection (vs direct) | ${ms(sidecar.latency.p50Us - direct.latency.p50Us)} | |`,
      // Whether the throughput comparison measured the proxies: alone on a core a proxy is
      // CPU-bound, and its throughput share is the pass-through's CPU per request over its own.
      `| CPU per request at 16 connections, bare pass-through over sidecar | ${figure(
        sidecar.rounds.cpuUs.map((us, i) => ((bare.rounds.cpuUs[i] ?? NaN) / us) * 100),
        percent,
      )} | reported |`,
      `| sidecar peak RSS < 80 MB | ${sidecar.rssMb?.toFixed(0)} MB | ${(sidecar.rssMb ?? Infinity) < 80 ? 'met' : '**missed**'} |`,
    );
  }
  const cost = (a: Row, b: Row, limit: number, label: string) => {
    const costs = ratios(a, b).map((r) => 100 - r);
    lines.push(`| ${label} | ${figure(costs, percent)} | ${verdict(costs, (v) => v < limit)} |`);
  };
  if (limited && sidecar) cost(limited, sidecar, 10, 'rate limits cost < 10% of throughput');
  if (shared && limited)
    lines.push(
      `| Redis-shared limit: added p50 at 1 connection | ${ms(shared.latency.p50Us - limited.latency.p50Us)} | |`,
    );
  if (aws && sidecar)
    cost(aws, sidecar, 10, 'Secrets Manager key vs file key costs < 10% of throughput');
  if (dlp && big) cost(dlp, big, 10, 'data protection on a 4 KiB prompt costs < 10% of throughput');
  lines.push(
    '',
    'Each figure compares the two targets round by round (their slices alternated). A verdict is',
    `given only when at least ${roundsNeeded(ROUNDS)} of the ${ROUNDS} rounds agree (a one-sided sign test at 5%);`,
    "otherwise the difference is inside this run's noise and only the in-process figures in",
    'docs/benchmarks.md can settle it.',
  );
  return [...lines, '', ...sections.flatMap((s) => [s, ''])].join('\n');
}

/** Peak resident set of a process, in MB (Linux). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
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
