/**
 * The address pattern runs on JavaScript's backtracking engine (in the value schema at ingest,
 * and on `email.from` at validation): it must stay linear on hostile input.
 */
import { describe, expect, it } from 'vitest';
import { checkValue } from '@omnibus/sdk';
import { ADDRESS_PATTERN } from '../src/config.ts';
import { EmailSink, emailValueSchema } from '../src/index.ts';

/** The former pattern, kept as the reference the new one must agree with. */
const BACKTRACKING = /^[^\r\n]*@[^\r\n]+$/;

describe('the address pattern', () => {
  it('accepts exactly the strings the former pattern accepted', () => {
    const samples = ['ada@example.org', 'Ada <ada@example.org>', 'a@b@c', '@@', '@a', 'a@', '@', 'no at', 'a@b\n', 'a\r@b', 'x@ ', '"a@b" <c@d>', ''];
    for (const sample of samples) expect(ADDRESS_PATTERN.test(sample), JSON.stringify(sample)).toBe(BACKTRACKING.test(sample));
  });

  it('answers at once on a long line of @ broken by a line feed', () => {
    const hostile = `${'@'.repeat(200_000)}\nx`;
    const started = performance.now();
    expect(ADDRESS_PATTERN.test(hostile)).toBe(false);
    expect(checkValue(emailValueSchema, { to: hostile, subject: 's', text: 't' })).not.toEqual([]);
    const infos = EmailSink.config.validate('EmailSink', { 'smtp.host': 'h', 'email.from': hostile });
    expect(infos.configs.find((c) => c.value.name === 'email.from')?.value.errors).toHaveLength(1);
    // Quadratic before: 200,000² steps, minutes.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
