import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { protectRequest, protectResponse, redactAll } from './index.js';
import type { DataProtection } from './schema.js';

const EMAIL = 'jane.doe@example.com';
const CARD = '4111 1111 1111 1111';
const key = () => ['sk', 'proj', randomBytes(30).toString('base64url')].join('-');

const redactPii: DataProtection = { pii: 'redact' };

describe('protectRequest', () => {
  it('passes without looking when settings are absent or every action is off', () => {
    const body = { model: 'm', messages: [{ role: 'user', content: EMAIL }] };
    const none = protectRequest('openai', body, undefined);
    const off = protectRequest('openai', body, { pii: 'off', secrets: 'off', entities: {} });
    expect(none).toEqual({ verdict: 'pass', counts: {} });
    expect(off).toBe(none);
  });

  it('redacts chat messages with typed placeholders and counts each entity type', () => {
    const body = {
      model: 'gpt-4o',
      user: EMAIL,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: `Mail ${EMAIL} or ${EMAIL}, card ${CARD}.` },
      ],
    };
    const verdict = protectRequest('openai', body, redactPii);
    expect(verdict).toEqual({
      verdict: 'redacted',
      counts: { email: 2, credit_card: 1 },
      body: {
        model: 'gpt-4o',
        user: EMAIL,
        messages: [
          body.messages[0],
          {
            role: 'user',
            content: 'Mail [REDACTED:email] or [REDACTED:email], card [REDACTED:credit_card].',
          },
        ],
      },
    });
    // The caller's body is left as it was; unchanged branches are shared, not copied.
    expect(body.messages[1]!.content).toContain(EMAIL);
    if (verdict.verdict === 'redacted')
      expect((verdict.body as typeof body).messages[0]).toBe(body.messages[0]);
  });

  it('blocks naming the entity type, never the value', () => {
    const secret = key();
    const verdict = protectRequest(
      'openai',
      { model: 'm', messages: [{ role: 'user', content: `use ${secret} and ${EMAIL}` }] },
      { pii: 'redact', secrets: 'block' },
    );
    expect(verdict).toEqual({
      verdict: 'blocked',
      entity: 'openai_key',
      counts: { openai_key: 1, email: 1 },
    });
    expect(JSON.stringify(verdict)).not.toContain(secret);
  });

  it('lets a per-entity action override the category action', () => {
    const body = { model: 'm', messages: [{ role: 'user', content: `${EMAIL} from 10.0.0.1` }] };
    const verdict = protectRequest('openai', body, {
      pii: 'block',
      entities: { email: 'redact', ip_address: 'off' },
    });
    expect(verdict).toMatchObject({ verdict: 'redacted', counts: { email: 1 } });
  });

  it('scans chat content parts and tool call arguments, not other fields', () => {
    const body = {
      model: EMAIL,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: `hi ${EMAIL}` },
            { type: 'image_url', image_url: { url: `https://x.test/${EMAIL}` } },
          ],
        },
        {
          role: 'assistant',
          tool_calls: [
            {
              id: EMAIL,
              type: 'function',
              function: { name: 'f', arguments: `{"to":"${EMAIL}"}` },
            },
          ],
        },
      ],
      metadata: { note: EMAIL },
    };
    const verdict = protectRequest('openai', body, redactPii);
    expect(verdict.verdict).toBe('redacted');
    const out = JSON.stringify(verdict.verdict === 'redacted' ? verdict.body : null);
    expect(verdict.counts).toEqual({ email: 2 });
    expect(out).toContain('"text":"hi [REDACTED:email]"');
    expect(out).toContain('"arguments":"{\\"to\\":\\"[REDACTED:email]\\"}"');
    expect(out).toContain(`"model":"${EMAIL}"`);
    expect(out).toContain(`"note":"${EMAIL}"`);
  });

  it('covers completions prompts, embeddings inputs and responses items', () => {
    const expectOne = (body: unknown) =>
      expect(protectRequest('openai', body, redactPii).counts).toEqual({ email: 1 });
    expectOne({ model: 'm', prompt: `to ${EMAIL}` });
    expectOne({ model: 'm', prompt: ['a', `to ${EMAIL}`] });
    expectOne({ model: 'm', input: [`to ${EMAIL}`, 'b'] });
    expectOne({ model: 'm', input: `to ${EMAIL}` });
    expectOne({ model: 'm', instructions: `to ${EMAIL}`, input: 'hi' });
    expectOne({
      model: 'm',
      input: [{ role: 'user', content: [{ type: 'input_text', text: `to ${EMAIL}` }] }],
    });
    expectOne({ model: 'm', input: [{ type: 'function_call_output', output: `to ${EMAIL}` }] });
    expect(protectRequest('openai', { model: 'm', input: [[1, 2, 3]] }, redactPii).verdict).toBe(
      'pass',
    );
  });

  it('covers Anthropic system prompts, content blocks and tool results', () => {
    const body = {
      model: 'claude',
      system: [{ type: 'text', text: `operator ${EMAIL}` }],
      messages: [
        { role: 'user', content: `hello ${EMAIL}` },
        {
          role: 'user',
          content: [
            { type: 'text', text: `card ${CARD}` },
            { type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: EMAIL }] },
          ],
        },
      ],
    };
    expect(protectRequest('anthropic', body, redactPii).counts).toEqual({
      email: 3,
      credit_card: 1,
    });
    expect(protectRequest('anthropic', { system: EMAIL, messages: [] }, redactPii).counts).toEqual({
      email: 1,
    });
  });

  it('tolerates bodies of any shape', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        const verdict = protectRequest('openai', body, { pii: 'redact', secrets: 'redact' });
        expect(['pass', 'redacted']).toContain(verdict.verdict);
        protectRequest('anthropic', body, { pii: 'redact', secrets: 'redact' });
      }),
    );
  });

  it('never changes anything but prompt text', () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.string({ maxLength: 40 }),
        fc.constantFrom<'openai' | 'anthropic'>('openai', 'anthropic'),
        (other, prose, type) => {
          const body = {
            model: `m-${EMAIL}`,
            user: EMAIL,
            metadata: other,
            tools: [{ name: 'f', description: EMAIL }],
            messages: [{ role: 'user', content: `${prose} ${EMAIL}` }],
          };
          const verdict = protectRequest(type, body, { pii: 'redact' });
          expect(verdict.verdict).toBe('redacted');
          if (verdict.verdict !== 'redacted') return;
          const { messages, ...rest } = verdict.body as typeof body;
          const { messages: _original, ...originalRest } = body;
          expect(rest).toEqual(originalRest);
          expect(messages[0]!.content).not.toContain(EMAIL);
        },
      ),
    );
  });

  it('leaves nothing detectable behind after redaction', () => {
    const settings: DataProtection = { pii: 'redact', secrets: 'redact' };
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 60 }), { maxLength: 6 }), (parts) => {
        const text = parts.join(` ${EMAIL} `);
        const first = protectRequest('openai', { messages: [{ content: text }] }, settings);
        const body = first.verdict === 'redacted' ? first.body : { messages: [{ content: text }] };
        expect(JSON.stringify(body)).not.toContain(EMAIL);
        expect(protectRequest('openai', body, settings).verdict).toBe('pass');
      }),
    );
  });
});

describe('protectResponse', () => {
  const response = { choices: [{ index: 0, message: { role: 'assistant', content: EMAIL } }] };
  it('does nothing unless the policy asks for response scanning', () => {
    expect(protectResponse('openai', response, redactPii).verdict).toBe('pass');
  });
  it('redacts completion text of OpenAI and Anthropic responses', () => {
    const settings: DataProtection = { pii: 'redact', scanResponses: true };
    expect(protectResponse('openai', response, settings)).toMatchObject({
      verdict: 'redacted',
      body: { choices: [{ message: { content: '[REDACTED:email]' } }] },
    });
    const anthropic = { content: [{ type: 'text', text: `x ${EMAIL}` }] };
    expect(protectResponse('anthropic', anthropic, settings)).toMatchObject({
      verdict: 'redacted',
      body: { content: [{ type: 'text', text: 'x [REDACTED:email]' }] },
    });
  });
});

describe('redactAll', () => {
  it('redacts every entity type whatever the policy', () => {
    const secret = key();
    expect(redactAll(`${EMAIL} ${secret}`)).toBe('[REDACTED:email] [REDACTED:openai_key]');
  });
});
