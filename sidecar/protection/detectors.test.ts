import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { DETECTORS, detect, looksRandom, TextScan } from './detectors.js';
import { ibanValid, luhnValid, ssnValid } from './checksums.js';
import type { EntityType } from './entities.js';

/** The entity types found in `text`, in order. */
function found(text: string): EntityType[] {
  return detect(text, DETECTORS).map((f) => f.entity);
}

function matched(text: string, entity: EntityType): string[] {
  return detect(text, DETECTORS)
    .filter((f) => f.entity === entity)
    .map((f) => text.slice(f.start, f.end));
}

/** Appends the Luhn check digit to a partial card number. */
function withLuhnDigit(partial: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(partial + d)) return partial + d;
  throw new Error('unreachable');
}

// Canaries are assembled at runtime so the source never holds anything shaped like a credential.
const openaiKey = () => ['sk', 'proj', randomBytes(30).toString('base64url')].join('-');
const anthropicKey = () => ['sk', 'ant', 'api03', randomBytes(40).toString('base64url')].join('-');
const awsKey = () => 'AK' + 'IA' + randomBytes(10).toString('hex').toUpperCase().slice(0, 16);
const jwtOf = (payload: object) =>
  [
    Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url'),
    Buffer.from(JSON.stringify(payload)).toString('base64url'),
    randomBytes(32).toString('base64url'),
  ].join('.');
const pemBlock = (label: string) =>
  [
    `-----${'BEGIN'} ${label}-----`,
    randomBytes(48).toString('base64'),
    randomBytes(48).toString('base64'),
    `-----${'END'} ${label}-----`,
  ].join('\n');

describe('email', () => {
  it('finds addresses inside prose and punctuation', () => {
    expect(matched('Mail jane.doe+tag@example.co.uk, then stop.', 'email')).toEqual([
      'jane.doe+tag@example.co.uk',
    ]);
    expect(matched('<a.b@mail.example.org>.', 'email')).toEqual(['a.b@mail.example.org']);
  });
  it('ignores handles, decorators and addresses without a top-level domain', () => {
    expect(found('@here ping @team, see foo@bar and x@y.z and user@localhost')).toEqual([]);
  });
});

describe('credit_card', () => {
  it('finds Luhn-valid numbers of the card networks, with or without separators', () => {
    expect(matched('card 4111 1111 1111 1111 exp', 'credit_card')).toEqual(['4111 1111 1111 1111']);
    expect(matched('amex 3782-822463-10005.', 'credit_card')).toEqual(['3782-822463-10005']);
    expect(matched('mc 5555555555554444', 'credit_card')).toEqual(['5555555555554444']);
  });
  it('keeps a valid number when more digits follow after a space', () => {
    expect(matched('4111 1111 1111 1111 2 pcs', 'credit_card')).toEqual(['4111 1111 1111 1111']);
  });
  it('rejects numbers that fail Luhn, belong to no network, or sit inside longer digit runs', () => {
    expect(found('card 4111 1111 1111 1112')).not.toContain('credit_card');
    expect(found('order 1234567812345670')).not.toContain('credit_card'); // Luhn-valid, no network
    expect(found('id 94111111111111111')).not.toContain('credit_card');
    expect(found('x41111111111111119')).not.toContain('credit_card');
  });
});

describe('us_ssn', () => {
  it('finds issued-range numbers with dashes or spaces', () => {
    expect(matched('SSN 123-45-6789.', 'us_ssn')).toEqual(['123-45-6789']);
    expect(matched('ssn 078 05 1120', 'us_ssn')).toEqual(['078 05 1120']);
  });
  it.each([
    '000-12-3456',
    '666-12-3456',
    '900-12-3456',
    '999-12-3456',
    '123-00-4567',
    '123-45-0000',
  ])('rejects the never-issued range %s', (ssn) =>
    expect(found(`ssn ${ssn}`)).not.toContain('us_ssn'),
  );
  it('rejects mixed separators and longer dashed runs', () => {
    expect(found('123-45 6789')).not.toContain('us_ssn');
    expect(found('2026-123-45-6789')).not.toContain('us_ssn');
  });
  it('finds nine bare digits only after an SSN label', () => {
    expect(matched('SSN: 078051120, thanks', 'us_ssn')).toEqual(['078051120']);
    expect(matched('my social security number is 123456789', 'us_ssn')).toEqual(['123456789']);
    expect(found('order 078051120 shipped')).not.toContain('us_ssn');
    expect(found('ssn 666051120')).not.toContain('us_ssn');
  });
  it('agrees with the range rules', () => {
    expect(ssnValid('001', '01', '0001')).toBe(true);
    expect(ssnValid('899', '99', '9999')).toBe(true);
    expect(ssnValid('665', '01', '0001')).toBe(true);
  });
});

describe('iban', () => {
  it('finds checksum-valid IBANs, compact or grouped', () => {
    expect(matched('pay DE89370400440532013000 now', 'iban')).toEqual(['DE89370400440532013000']);
    expect(matched('to GB82 WEST 1234 5698 7654 32 THANKS', 'iban')).toEqual([
      'GB82 WEST 1234 5698 7654 32',
    ]);
  });
  it('rejects a wrong check digit, a wrong length and an unknown country', () => {
    expect(found('DE89370400440532013001')).not.toContain('iban');
    expect(found('DE8937040044053201300')).not.toContain('iban');
    expect(ibanValid('ZZ89370400440532013000')).toBe(false);
  });
});

describe('phone', () => {
  it('finds international and North American formats', () => {
    expect(matched('call +44 20 7946 0958 today', 'phone')).toEqual(['+44 20 7946 0958']);
    expect(matched('call (415) 555-2671 or 415.555.2671', 'phone')).toEqual([
      '(415) 555-2671',
      '415.555.2671',
    ]);
  });
  it('ignores dates, times, versions and bare digit runs', () => {
    expect(found('on 2026-11-27 at 10:30, v1.2.3, build 4155552671')).not.toContain('phone');
  });
});

describe('ip_address', () => {
  it('finds IPv4 and IPv6 addresses', () => {
    expect(matched('from 192.168.1.20. Then', 'ip_address')).toEqual(['192.168.1.20']);
    expect(matched('via 2001:db8::8a2e:370:7334 ok', 'ip_address')).toEqual([
      '2001:db8::8a2e:370:7334',
    ]);
  });
  it('ignores out-of-range octets, longer dotted runs, times and scopes', () => {
    expect(found('256.1.1.1 and 1.2.3.4.5 and 10:30:00 and std::vec and a::b')).not.toContain(
      'ip_address',
    );
  });
});

describe('secrets', () => {
  it('finds OpenAI, Anthropic and AWS keys by their shapes', () => {
    const o = openaiKey();
    const a = anthropicKey();
    const k = awsKey();
    expect(matched(`key=${o};`, 'openai_key')).toEqual([o]);
    expect(matched(`"${a}"`, 'anthropic_key')).toEqual([a]);
    expect(matched(`id ${k} end`, 'aws_access_key')).toEqual([k]);
  });
  it('finds a JWT and a private key block', () => {
    const token = jwtOf({ sub: 'user-1', iat: 1700000000 });
    expect(matched(`Bearer ${token}`, 'jwt')).toEqual([token]);
    const pem = pemBlock('RSA PRIVATE KEY');
    expect(matched(`here:\n${pem}\nbye`, 'private_key')).toEqual([pem]);
  });
  it('redacts a private key block without a footer to the end of the text', () => {
    const pem = pemBlock('PRIVATE KEY');
    const head = pem.slice(0, pem.lastIndexOf('-----END'));
    expect(matched(`x ${head}`, 'private_key')).toEqual([head]);
  });
  it('finds random tokens but not identifiers, paths or digests', () => {
    const token =
      randomBytes(30)
        .toString('base64url')
        .replace(/^[^a-z]*/, 'q') + 'A9';
    expect(looksRandom(token)).toBe(true);
    expect(matched(`token ${token} end`, 'high_entropy_token')).toEqual([token]);
    expect(
      found(
        'getUserAccountSettingsForOrganization2 /usr/local/lib/node_modules/Package2/index ' +
          'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ),
    ).toEqual([]);
  });
  it('prefers the specific secret over the generic token when both match', () => {
    const o = openaiKey();
    expect(found(`token=${o}`)).toEqual(['openai_key']);
  });
  it('does not mistake words that start like keys for keys', () => {
    expect(found('use sk-learn-style pipelines; eyJust kidding; AKIA')).toEqual([]);
  });
});

describe('detect', () => {
  it('returns sorted, non-overlapping findings inside the text for any input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        let last = 0;
        for (const f of detect(text, DETECTORS)) {
          expect(f.start).toBeGreaterThanOrEqual(last);
          expect(f.end).toBeGreaterThan(f.start);
          expect(f.end).toBeLessThanOrEqual(text.length);
          last = f.end;
        }
      }),
    );
  });

  it('finds every generated Luhn-valid Visa number embedded in prose', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9]{14}$/),
        fc.constantFrom(' ', '-', ''),
        fc.string({ maxLength: 20 }).map((s) => s.replace(/[0-9+]/g, 'x')),
        (middle, sep, prose) => {
          const digits = withLuhnDigit('4' + middle);
          const card = sep === '' ? digits : digits.match(/.{1,4}/g)!.join(sep);
          const text = `${prose} pay ${card} thanks`;
          expect(matched(text, 'credit_card')).toEqual([card]);
        },
      ),
    );
  });

  it('finds every generated email address', () => {
    fc.assert(
      fc.property(fc.emailAddress(), (address) => {
        fc.pre(/^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}$/.test(address));
        fc.pre(address.indexOf('@') <= 64);
        expect(found(`write to ${address} please`)).toContain('email');
      }),
    );
  });
});

describe('the cheap tests before each pattern', () => {
  // Entities of every kind, their near misses, and the characters around them, run together.
  const fragments = fc.oneof(
    fc.constantFrom(
      '+1 415 555 2671',
      '(415) 555-2671',
      '415.555.2671',
      '4111 1111 1111 1111',
      '5500-0000-0000-0004',
      '123-45-6789',
      '123 45 6789',
      'ssn: 123456789',
      'GB82 WEST 1234 5698 7654 32',
      'DE89370400440532013000',
      '10.0.0.1',
      '2001:db8::8a2e:370:7334',
      'jane.doe@example.com',
      ' ',
      '-',
      '.',
      ':',
      '+',
      '(',
      'x',
    ),
    fc.constantFrom(openaiKey, anthropicKey, awsKey, () => jwtOf({ sub: 'x' })).map((f) => f()),
    fc.stringMatching(/^[0-9 .()+-]{1,24}$/),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
    fc.string({ maxLength: 12 }),
  );

  it('never skip a text their detector would find something in (property)', () => {
    fc.assert(
      fc.property(fc.array(fragments, { maxLength: 8 }), (parts) => {
        const text = parts.join('');
        for (const detector of DETECTORS) {
          const out: Parameters<typeof detector.find>[1] = [];
          detector.find(text, out, new TextScan(text));
          if (out.length > 0) expect(detector.mayContain(text, new TextScan(text))).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('pass over prose with dates, times and issue numbers', () => {
    const prose = 'the release on 2026-11-27 at 10:30 fixes issue 1234 in room B ';
    const scan = new TextScan(prose.repeat(20));
    expect(DETECTORS.filter((d) => d.mayContain(scan.text, scan)).map((d) => d.entity)).toEqual([
      'high_entropy_token',
      'us_ssn', // its labelled form has a pattern of its own
      'ip_address',
    ]);
  });
});

describe('linear time on hostile input', () => {
  const size = 100 * 1024;
  const inputs: Record<string, string> = {
    digits: '7'.repeat(size),
    'digits and spaces': '4 '.repeat(size / 2),
    'at signs': '@'.repeat(size),
    dots: '.'.repeat(size),
    'local parts': 'a.'.repeat(size / 2) + '@',
    'at and label': 'a@b.'.repeat(size / 4),
    'dotted digits': '1.'.repeat(size / 2),
    colons: ':'.repeat(size),
    'hex and colons': 'a:'.repeat(size / 2),
    'jwt prefixes': 'eyJ'.repeat(size / 3),
    'jwt segments': 'eyJaaaaa.'.repeat(size / 9),
    'key prefixes': 'sk-'.repeat(size / 3),
    'pem headers': '-----BEGIN PRIVATE KEY-----'.repeat(size / 27),
    'token characters': 'aA1+'.repeat(size / 4),
    'iban-like': 'DE89 '.repeat(size / 5),
    'phone-like': '+1 '.repeat(size / 3),
  };
  it.each(Object.keys(inputs))('scans 100 KiB of %s quickly', (name) => {
    const text = inputs[name]!;
    const start = performance.now();
    detect(text, DETECTORS);
    // A quadratic scan of 100 KiB takes seconds to minutes; linear ones take a few ms.
    expect(performance.now() - start).toBeLessThan(500);
  });
});
