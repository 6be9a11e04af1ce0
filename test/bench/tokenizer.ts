// Is a real tokenizer cheap enough for the hot path? Times gpt-tokenizer against the byte bound on a
// 4 KiB prompt. Run: npx tsx test/bench/tokenizer.ts
import { estimateInputTokens } from '../../sidecar/metering/estimate.js';

const words =
  'The quick brown fox jumps over the lazy dog while reasoning about distributed systems, 42 apples; café naïve 東京.'.split(
    ' ',
  );

function prompt(bytes: number, seed: number): string {
  let s = '';
  for (let i = seed; Buffer.byteLength(s) < bytes; i++) s += `${words[i % words.length]} `;
  return s.slice(0, bytes);
}

function time(label: string, iterations: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(200, iterations); i++) fn(i);
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  const us = Number(process.hrtime.bigint() - started) / 1000 / iterations;
  console.log(`${label.padEnd(44)} ${us.toFixed(2).padStart(9)} µs/request`);
  return us;
}

const rssBefore = process.memoryUsage().rss;
// loaded here, not imported above, so its resident cost can be measured
const { countTokens } = await import('gpt-tokenizer');
countTokens('warm up');
const rssTokenizer = process.memoryUsage().rss - rssBefore;

const prompts = Array.from({ length: 64 }, (_, i) => prompt(4096, i));
const bodies = prompts.map((content) => ({
  model: 'gpt-4o',
  messages: [{ role: 'user', content }],
}));
const raw = bodies.map((b) => Buffer.byteLength(JSON.stringify(b)));

const tokenizerUs = time('gpt-tokenizer countTokens (4 KiB prompt)', 500, (i) =>
  countTokens(prompts[i % 64]!),
);
const boundUs = time('estimateInputTokens byte bound (4 KiB prompt)', 100_000, (i) =>
  estimateInputTokens('openai', bodies[i % 64], raw[i % 64]!),
);
const tokens = countTokens(prompts[0]!);
const bound = estimateInputTokens('openai', bodies[0], raw[0]!);
console.log(`tokens: real ${tokens}, byte bound ${bound} (${(bound / tokens).toFixed(1)}x)`);
console.log(`gpt-tokenizer resident memory after first use: ~${Math.round(rssTokenizer / 1e6)} MB`);
console.log(
  `at 5000 req/s: tokenizer ${((tokenizerUs * 5000) / 1e4).toFixed(0)}% of a core, byte bound ${((boundUs * 5000) / 1e4).toFixed(2)}%`,
);
