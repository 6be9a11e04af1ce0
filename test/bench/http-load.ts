// Load generation: a sequential keep-alive loop timed in microseconds for single-connection
// latency (autocannon reports whole milliseconds), and autocannon for multi-connection throughput.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import autocannon from 'autocannon';

export interface Target {
  name: string;
  url: string;
  body: string;
}

export interface LatencyResult {
  requests: number;
  rps: number;
  p50Us: number;
  p99Us: number;
}

export interface ThroughputResult {
  rps: number;
  /** Responses completed in the window, and its length as autocannon timed it. */
  requests: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** Responses by status code, to say which failures a run met. */
  statuses?: Record<string, number>;
}

/** One connection, one request at a time, for `seconds`. */
export async function measureLatency(target: Target, seconds: number): Promise<LatencyResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(target.url);
  const body = Buffer.from(target.body);
  const samples: number[] = [];
  const deadline = process.hrtime.bigint() + BigInt(seconds * 1e9);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`${target.name}: status ${res.statusCode}`));
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const started = process.hrtime.bigint();
  while (process.hrtime.bigint() < deadline) {
    const t0 = process.hrtime.bigint();
    await one();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  samples.sort((a, b) => a - b);
  return {
    requests: samples.length,
    rps: samples.length / elapsed,
    p50Us: percentile(samples, 0.5),
    p99Us: percentile(samples, 0.99),
  };
}

export function measureThroughput(
  target: Target,
  connections: number,
  seconds: number,
): Promise<ThroughputResult> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: target.url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: target.body,
        connections,
        duration: seconds,
        // autocannon stops on its next sample tick: 100 ms ticks keep short windows short.
        sampleInt: 100,
      },
      (error, result) => {
        if (error) return reject(error);
        resolve({
          rps: result.requests.total / result.duration,
          requests: result.requests.total,
          seconds: result.duration,
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          errors: result.errors,
          non2xx: result.non2xx,
          statuses: Object.fromEntries(
            Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count ?? 0]),
          ),
        });
      },
    );
  });
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** CPU time (user + system) a process has used so far, in microseconds (Linux). */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself hold spaces: utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}

/** USER_HZ: Linux reports CPU time in 1/100 s on every architecture Node runs on. */
const CLOCK_TICKS = 100;
