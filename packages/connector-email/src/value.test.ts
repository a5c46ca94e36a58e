import { describe, expect, it } from 'vitest';
import { checkValue } from '@omnibus/sdk';
import { emailValueSchema, LIMITS, messageIdFor } from './value.ts';

const check = (value: unknown) => checkValue(emailValueSchema, value);
const base = { to: 'ada@example.org', subject: 'Hello', text: 'Hi Ada' };

describe('emailValueSchema', () => {
  it('accepts a full message', () => {
    expect(
      check({
        to: ['Ada <ada@example.org>', 'bob@example.org'],
        cc: 'carol@example.org',
        bcc: ['audit@example.org'],
        from: 'Shop <shop@example.org>',
        reply_to: 'help@example.org',
        subject: 'Order 42',
        html: '<p>Thanks</p>',
        headers: { 'List-Unsubscribe': '<https://example.org/u/1>', 'X-Tag': 'orders' },
        attachments: [
          { filename: 'a.pdf', content: 'JVBERi0=', contentType: 'application/pdf' },
          { filename: 'b.txt', text: 'plain' },
        ],
      }),
    ).toEqual([]);
  });

  it('documents every property', () => {
    const properties = emailValueSchema.properties as Record<string, { description?: string }>;
    for (const [name, schema] of Object.entries(properties)) expect(schema.description, name).toBeTruthy();
  });

  it('requires to, subject and a body', () => {
    expect(check({ subject: 'x', text: 'y' })).toContainEqual({ path: '/', message: "must have required property 'to'" });
    expect(check({ to: 'ada@example.org', text: 'y' })).toContainEqual({ path: '/', message: "must have required property 'subject'" });
    expect(check({ to: 'ada@example.org', subject: 'x' })).toContainEqual({ path: '/', message: 'must match a schema in anyOf' });
  });

  it('rejects unknown properties, bad addresses and header injection', () => {
    expect(check({ ...base, priority: 'high' })).toContainEqual({ path: '/', message: 'must NOT have additional properties' });
    expect(check({ ...base, to: 'not-an-address' }).length).toBeGreaterThan(0);
    expect(check({ ...base, to: [] }).length).toBeGreaterThan(0);
    expect(check({ ...base, to: Array.from({ length: LIMITS.recipientsPerField + 1 }, (_, i) => `u${i}@example.org`) }).length).toBeGreaterThan(0);
    expect(check({ ...base, subject: 'Hi\r\nBcc: victim@example.org' })[0]?.path).toBe('/subject');
    expect(check({ ...base, to: 'ada@example.org\r\nBcc: victim@example.org' }).length).toBeGreaterThan(0);
    expect(check({ ...base, headers: { 'X-Tag': 'a\nb' } })[0]?.path).toBe('/headers/X-Tag');
  });

  it('keeps the headers the connector writes out of reach', () => {
    for (const name of ['Message-ID', 'message-id', 'X-OMNIBUS-MESSAGE-ID', 'From', 'bcc', 'Content-Type']) {
      expect(check({ ...base, headers: { [name]: 'x' } }).length, name).toBeGreaterThan(0);
    }
    expect(check({ ...base, headers: { 'Message-ID-Extra': 'x', 'X-From': 'y' } })).toEqual([]);
    expect(check({ ...base, headers: { 'Bad Name': 'x' } }).length).toBeGreaterThan(0);
  });

  it('checks attachments: base64 or text, one of them, within limits', () => {
    const withAttachment = (a: unknown) => check({ ...base, attachments: [a] });
    expect(withAttachment({ filename: 'a.bin', content: 'not base64!' })[0]?.path).toBe('/attachments/0/content');
    expect(withAttachment({ filename: 'a.txt', content: 'YQ==', text: 'a' }).length).toBeGreaterThan(0);
    expect(withAttachment({ filename: 'a.txt' }).length).toBeGreaterThan(0);
    expect(withAttachment({ filename: '../etc/passwd', text: 'a' })[0]?.path).toBe('/attachments/0/filename');
    expect(withAttachment({ filename: 'a.txt', text: 'a', contentType: 'text' })[0]?.path).toBe('/attachments/0/contentType');
    expect(withAttachment({ filename: 'a.txt', text: 'a', size: 1 })).toContainEqual({ path: '/attachments/0', message: 'must NOT have additional properties' });
    const tooMany = Array.from({ length: LIMITS.attachments + 1 }, (_, i) => ({ filename: `f${i}.txt`, text: 'x' }));
    expect(check({ ...base, attachments: tooMany })[0]?.path).toBe('/attachments');
  });
});

describe('messageIdFor', () => {
  it('wraps a plain id as is', () => {
    expect(messageIdFor('01JAB3C4D5-x_y', 'example.org')).toBe('<01JAB3C4D5-x_y@example.org>');
  });

  it('percent-encodes what a Message-ID cannot hold, the same way every time', () => {
    expect(messageIdFor('order 42.1@shop<é>%', 'example.org')).toBe('<order%2042%2E1%40shop%3C%C3%A9%3E%25@example.org>');
    expect(messageIdFor('a.b', 'x.org')).not.toBe(messageIdFor('a%2Eb', 'x.org'));
  });
});
