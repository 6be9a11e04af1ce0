// Pure, linear-time detectors. Every regex starts only at the beginning of a run of its first
// character class (a lookbehind) and uses bounded quantifiers over classes that exclude their
// delimiters, so a failed attempt costs at most the length of the run it started in; the hand
// scanners (email, IPv6, tokens) anchor on a character and expand a bounded distance from it. No
// input, however hostile, makes a scan quadratic (detectors.test.ts feeds them 100 KiB of each).
import { isIPv6 } from 'node:net';
import type { EntityType } from './entities.js';
import {
  cardNetworkPlausible,
  ibanValid,
  luhnValid,
  shannonEntropy,
  ssnValid,
} from './checksums.js';

export interface Finding {
  entity: EntityType;
  start: number;
  end: number;
}

interface Detector {
  entity: EntityType;
  /** A cheap test that must pass for the pattern to be worth running at all. */
  mayContain(text: string, scan: TextScan): boolean;
  find(text: string, out: Finding[], scan: TextScan): void;
}

/**
 * Several detectors' patterns joined into one: a single pass over a text that holds none of them
 * (most prompts) instead of one pass each. It matches wherever any of its patterns matches, so a
 * text it passes over holds nothing those detectors would find.
 */
class Prefilter {
  readonly pattern: RegExp;

  constructor(patterns: readonly RegExp[]) {
    for (const p of patterns)
      if (p.flags.replace('g', '') !== '' || /\\[1-9]/.test(p.source))
        throw new Error(`cannot join /${p.source}/${p.flags}: flags or a numbered backreference`);
    this.pattern = new RegExp(patterns.map((p) => p.source).join('|'));
  }
}

/** What detectors learn of one text, each at most once per detect() call. */
export class TextScan {
  private readonly prefiltered = new Map<Prefilter, boolean>();
  constructor(readonly text: string) {}

  mayMatch(prefilter: Prefilter): boolean {
    let verdict = this.prefiltered.get(prefilter);
    if (verdict === undefined) {
      verdict = prefilter.pattern.test(this.text);
      this.prefiltered.set(prefilter, verdict);
    }
    return verdict;
  }
}

/**
 * A regex detector. `accept` returns the length of the accepted match (it may shorten a match
 * that greedily ran into a following word), or 0 to reject it.
 */
function regexDetector(
  entity: EntityType,
  mayContain: Detector['mayContain'],
  pattern: RegExp,
  accept: (match: RegExpExecArray) => number = (m) => m[0].length,
): Detector {
  const re = global(pattern);
  return {
    entity,
    mayContain,
    find(text, out) {
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        const length = accept(m);
        if (length > 0) out.push({ entity, start: m.index, end: m.index + length });
      }
    },
  };
}

/** One compiled global copy per pattern; detection is synchronous, so sharing lastIndex is safe. */
function global(pattern: RegExp): RegExp {
  return pattern.global ? pattern : new RegExp(pattern.source, 'g');
}

const hasDigit = (text: string): boolean => /[0-9]/.test(text);

const HEX_OR_COLON = charTable('0123456789abcdefABCDEF:');
const ALNUM_OR_COLON = charTable('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:');

function charTable(chars: string): Uint8Array {
  const table = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)] = 1;
  return table;
}

function inTable(table: Uint8Array, c: number): boolean {
  return c < 128 && table[c] === 1;
}

/** Tries the longest prefix of `candidate` ending just before a separator, longest first. */
function longestValidPrefix(
  candidate: string,
  separators: string,
  valid: (prefix: string) => boolean,
): number {
  if (valid(candidate)) return candidate.length;
  for (let i = candidate.length - 1; i > 0; i--) {
    if (separators.includes(candidate[i]!) && valid(candidate.slice(0, i))) return i;
  }
  return 0;
}

const LOCAL_CHARS = charTable(
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-',
);
const DOMAIN_CHARS = charTable('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-');
const DOMAIN = /^(?:[A-Za-z0-9-]{1,63}\.){1,10}[A-Za-z]{2,24}$/;

/**
 * Emails from each `@` outwards: up to 64 local-part characters before it, up to 253 domain
 * characters after it (a regex starting at every word character costs ~10x more on prose).
 */
const email: Detector = {
  entity: 'email',
  mayContain: (t) => t.includes('@'),
  find(text, out) {
    let at = text.indexOf('@');
    while (at !== -1) {
      let start = at;
      while (start > 0 && at - start < 64 && inTable(LOCAL_CHARS, text.charCodeAt(start - 1)))
        start--;
      let end = at + 1;
      while (end < text.length && end - at <= 253 && inTable(DOMAIN_CHARS, text.charCodeAt(end)))
        end++;
      while (end > at + 1 && (text[end - 1] === '.' || text[end - 1] === '-')) end--;
      if (start < at && DOMAIN.test(text.slice(at + 1, end))) {
        out.push({ entity: 'email', start, end });
        at = text.indexOf('@', end);
      } else {
        at = text.indexOf('@', at + 1);
      }
    }
  },
};

const PHONE =
  /(?<![0-9A-Za-z+])(?:\+[1-9](?:[ .()-]{0,2}[0-9]){7,14}|(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4})(?![0-9])/;
const CREDIT_CARD = /(?<![0-9])[2-6][0-9](?:[ -]?[0-9]){11,17}(?![0-9])/;
const SSN_FORMATTED =
  /(?<![0-9-])([0-9]{3})(?<separator>[- ])([0-9]{2})\k<separator>([0-9]{4})(?![0-9-])/;
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/;

/** The digit-bearing patterns: phone numbers, cards, dashed or spaced SSNs, IBANs. */
const NUMBERS = new Prefilter([PHONE, CREDIT_CARD, SSN_FORMATTED, IBAN]);
const mayHoldNumbers = (_: string, scan: TextScan): boolean => scan.mayMatch(NUMBERS);

const phone = regexDetector('phone', mayHoldNumbers, PHONE);

const creditCard = regexDetector('credit_card', mayHoldNumbers, CREDIT_CARD, (m) =>
  longestValidPrefix(m[0], ' -', (s) => {
    const digits = s.replace(/[ -]/g, '');
    return digits.length >= 13 && cardNetworkPlausible(digits) && luhnValid(digits);
  }),
);

const ssnFormatted = regexDetector('us_ssn', mayHoldNumbers, SSN_FORMATTED, (m) =>
  ssnValid(m[1]!, m[3]!, m[4]!) ? m[0].length : 0,
);

/** Nine bare digits are an SSN only right after a label saying so (else every id would be one). */
const SSN_LABELLED =
  /(?<![A-Za-z])(?:ssn|ss#|social security(?: number| no\.?)?)[ :#=-]{0,3}(?:is[ :]{1,2})?([0-9]{3})([0-9]{2})([0-9]{4})(?![0-9])/gi;

const usSsn: Detector = {
  entity: 'us_ssn',
  mayContain: hasDigit,
  find(text, out, scan) {
    if (ssnFormatted.mayContain(text, scan)) ssnFormatted.find(text, out, scan);
    SSN_LABELLED.lastIndex = 0;
    let m: RegExpExecArray | null;
    const labelled: Finding[] = [];
    while ((m = SSN_LABELLED.exec(text)) !== null) {
      if (!ssnValid(m[1]!, m[2]!, m[3]!)) continue;
      const end = m.index + m[0].length;
      labelled.push({ entity: 'us_ssn', start: end - 9, end });
    }
    if (labelled.length > 0) {
      const all = [...out.splice(0), ...labelled].sort((a, b) => a.start - b.start);
      out.push(...all);
    }
  },
};

const iban = regexDetector('iban', mayHoldNumbers, IBAN, (m) =>
  longestValidPrefix(m[0], ' ', (s) => ibanValid(s.replace(/ /g, ''))),
);

const ipv4 =
  /(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![0-9])(?!\.[0-9])/g;

const ipAddress: Detector = {
  entity: 'ip_address',
  mayContain: (t) => t.includes('.') || t.includes(':'),
  find(text, out) {
    const found: Finding[] = [];
    if (text.includes('.')) {
      ipv4.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = ipv4.exec(text)) !== null)
        found.push({ entity: 'ip_address', start: m.index, end: m.index + m[0].length });
    }
    if (text.includes(':')) findIpv6(text, found);
    out.push(...found.sort((a, b) => a.start - b.start));
  },
};

/**
 * IPv6 from each colon outwards over hex digits and colons, at most 39 characters, bounded by
 * characters that cannot belong to an address. Each character is visited a bounded number of times.
 */
function findIpv6(text: string, out: Finding[]): void {
  let at = text.indexOf(':');
  while (at !== -1) {
    let start = at;
    while (start > 0 && at - start < 40 && inTable(HEX_OR_COLON, text.charCodeAt(start - 1)))
      start--;
    let end = at + 1;
    while (end < text.length && end - at < 40 && inTable(HEX_OR_COLON, text.charCodeAt(end))) end++;
    const bounded =
      (start === 0 || !inTable(ALNUM_OR_COLON, text.charCodeAt(start - 1))) &&
      (end === text.length || !inTable(ALNUM_OR_COLON, text.charCodeAt(end)));
    if (bounded && end - start <= 39 && plausibleIpv6(text.slice(start, end)))
      out.push({ entity: 'ip_address', start, end });
    at = text.indexOf(':', Math.max(end, at + 1));
  }
}

/** Rejects `a::b`-style tokens (C++ scopes, ratios): at least three hex groups and a real IPv6. */
function plausibleIpv6(candidate: string): boolean {
  let colons = 0;
  for (let i = 0; i < candidate.length; i++) if (candidate.charCodeAt(i) === 58) colons++;
  if (colons < 2) return false;
  return candidate.split(':').filter((g) => g.length > 0).length >= 3 && isIPv6(candidate);
}

const KEY_BODY = '[A-Za-z0-9_-]';
const hasLetterAndDigit = (s: string): boolean => /[0-9]/.test(s) && /[A-Za-z]/.test(s);

const OPENAI_KEY = new RegExp(`(?<!${KEY_BODY})sk-(?!ant-)${KEY_BODY}{20,400}`);
const ANTHROPIC_KEY = new RegExp(`(?<!${KEY_BODY})sk-ant-${KEY_BODY}{20,400}`);
const AWS_ACCESS_KEY =
  /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}(?![A-Za-z0-9])/;
const JWT = new RegExp(
  `(?<!${KEY_BODY})eyJ${KEY_BODY}{5,8000}\\.${KEY_BODY}{5,16000}\\.${KEY_BODY}{0,2000}`,
);

/** The keys and tokens with a fixed prefix. */
const PREFIXED_SECRETS = new Prefilter([OPENAI_KEY, ANTHROPIC_KEY, AWS_ACCESS_KEY, JWT]);
const mayHoldPrefixedSecrets = (_: string, scan: TextScan): boolean =>
  scan.mayMatch(PREFIXED_SECRETS);

const openaiKey = regexDetector('openai_key', mayHoldPrefixedSecrets, OPENAI_KEY, (m) =>
  hasLetterAndDigit(m[0].slice(3)) ? m[0].length : 0,
);

const anthropicKey = regexDetector('anthropic_key', mayHoldPrefixedSecrets, ANTHROPIC_KEY);

const awsAccessKey = regexDetector('aws_access_key', mayHoldPrefixedSecrets, AWS_ACCESS_KEY);

const jwt = regexDetector('jwt', mayHoldPrefixedSecrets, JWT, (m) => {
  const header = Buffer.from(m[0].slice(0, m[0].indexOf('.')), 'base64url').toString('latin1');
  return header.includes('"alg"') || header.includes('"typ"') ? m[0].length : 0;
});

const PEM_BEGIN = /-----BEGIN (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY( BLOCK)?-----/g;
const PEM_END = /-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY( BLOCK)?-----/y;

/** A PEM block from its header to its footer; with no footer, to the end of the text. */
const privateKey: Detector = {
  entity: 'private_key',
  mayContain: (t) => t.includes('PRIVATE KEY'),
  find(text, out) {
    const begin = PEM_BEGIN;
    begin.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = begin.exec(text)) !== null) {
      const end = pemEnd(text, m.index + m[0].length);
      out.push({ entity: 'private_key', start: m.index, end });
      begin.lastIndex = end;
    }
  },
};

function pemEnd(text: string, from: number): number {
  let at = text.indexOf('-----END ', from);
  while (at !== -1) {
    const footer = PEM_END;
    footer.lastIndex = at;
    if (footer.test(text)) return footer.lastIndex;
    at = text.indexOf('-----END ', at + 1);
  }
  return text.length;
}

const TOKEN_CHARS = charTable(
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-',
);
const MIN_TOKEN = 32;

/**
 * Generic credentials: a run of 32+ base64/base64url characters with upper case, lower case and
 * digits and a high Shannon entropy (random 32-character base62 scores ~4.6 bits; identifiers,
 * paths and hex digests stay below the threshold or lack a character class).
 */
const highEntropyToken: Detector = {
  entity: 'high_entropy_token',
  mayContain: (t) => t.length >= MIN_TOKEN,
  find(text, out) {
    forEachLongRun(text, TOKEN_CHARS, MIN_TOKEN, (start, end) => {
      if (looksRandom(text.slice(start, end)))
        out.push({ entity: 'high_entropy_token', start, end });
    });
  },
};

/**
 * Calls `found` for each maximal run of table characters at least `min` long. Skips ahead `min`
 * characters at a time (a run that long must cover the probe), so prose costs ~n/min probes.
 */
function forEachLongRun(
  text: string,
  table: Uint8Array,
  min: number,
  found: (start: number, end: number) => void,
): void {
  const n = text.length;
  let i = 0; // invariant: i === 0 or text[i - 1] is not a run character
  while (i + min <= n) {
    const probe = i + min - 1;
    if (!inTable(table, text.charCodeAt(probe))) {
      i = probe + 1;
      continue;
    }
    let start = probe;
    while (start > i && inTable(table, text.charCodeAt(start - 1))) start--;
    let end = probe + 1;
    while (end < n && inTable(table, text.charCodeAt(end))) end++;
    if (end - start >= min) found(start, end);
    i = end + 1;
  }
}

export function looksRandom(token: string): boolean {
  return (
    /[a-z]/.test(token) &&
    /[A-Z]/.test(token) &&
    /[0-9]/.test(token) &&
    shannonEntropy(token) >= ENTROPY_THRESHOLD
  );
}

export const ENTROPY_THRESHOLD = 4.3;

/** All detectors, most specific first: when matches overlap, the earlier detector wins. */
export const DETECTORS: readonly Detector[] = [
  privateKey,
  jwt,
  anthropicKey,
  openaiKey,
  awsAccessKey,
  highEntropyToken,
  email,
  iban,
  creditCard,
  usSsn,
  ipAddress,
  phone,
];

export type { Detector };

/**
 * Runs the given detectors over `text` and returns non-overlapping findings sorted by start.
 * Cost is linear in the text per detector, plus linear merging of the findings.
 */
export function detect(text: string, detectors: readonly Detector[]): Finding[] {
  let accepted: Finding[] = [];
  const scratch: Finding[] = [];
  const scan = new TextScan(text);
  for (const detector of detectors) {
    if (!detector.mayContain(text, scan)) continue;
    scratch.length = 0;
    detector.find(text, scratch, scan);
    if (scratch.length > 0) accepted = mergeFindings(accepted, scratch);
  }
  return accepted;
}

/** Merges sorted `candidates` into sorted `accepted`, dropping candidates that overlap it. */
function mergeFindings(accepted: Finding[], candidates: Finding[]): Finding[] {
  const kept: Finding[] = [];
  let i = 0;
  let keptEnd = 0;
  for (const c of candidates) {
    while (i < accepted.length && accepted[i]!.end <= c.start) i++;
    const next = accepted[i];
    if ((next === undefined || next.start >= c.end) && c.start >= keptEnd) {
      kept.push(c);
      keptEnd = c.end;
    }
  }
  if (kept.length === 0) return accepted;
  const merged: Finding[] = [];
  let a = 0;
  let k = 0;
  while (a < accepted.length || k < kept.length) {
    if (k >= kept.length || (a < accepted.length && accepted[a]!.start < kept[k]!.start))
      merged.push(accepted[a++]!);
    else merged.push(kept[k++]!);
  }
  return merged;
}
