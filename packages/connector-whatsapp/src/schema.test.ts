import { checkValue } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { whatsappValueSchema } from './schema.ts';

const valid = [
  { to: '15551234567', type: 'text', text: { body: 'Hello' } },
  { to: '+33612345678', type: 'text', text: { body: 'Bonjour', preview_url: true }, context: { message_id: 'wamid.abc' } },
  { to: '15551234567', type: 'template', template: { name: 'hello_world', language: { code: 'en_US' } } },
  {
    to: '15551234567',
    type: 'template',
    template: {
      name: 'order_update',
      language: { code: 'en_US', policy: 'deterministic' },
      components: [
        { type: 'body', parameters: [{ type: 'text', text: 'John' }] },
        { type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: 'code' }] },
      ],
    },
  },
];

const invalid: Array<[string, unknown]> = [
  ['no recipient', { type: 'text', text: { body: 'x' } }],
  ['a recipient that is not a number', { to: 'alice', type: 'text', text: { body: 'x' } }],
  ['an empty body', { to: '15551234567', type: 'text', text: { body: '' } }],
  ['a body over 4096 characters', { to: '15551234567', type: 'text', text: { body: 'x'.repeat(4097) } }],
  ['an unknown type', { to: '15551234567', type: 'image', image: { link: 'https://x' } }],
  ['a field the connector sets itself', { to: '15551234567', type: 'text', text: { body: 'x' }, biz_opaque_callback_data: 'y' }],
  ['a text message with a template', { to: '15551234567', type: 'text', template: { name: 'a', language: { code: 'en' } } }],
  ['a template without language', { to: '15551234567', type: 'template', template: { name: 'hello_world' } }],
  [
    'a button without index',
    { to: '15551234567', type: 'template', template: { name: 'a', language: { code: 'en' }, components: [{ type: 'button', sub_type: 'url' }] } },
  ],
  [
    'a text parameter without text',
    { to: '15551234567', type: 'template', template: { name: 'a', language: { code: 'en' }, components: [{ type: 'body', parameters: [{ type: 'text' }] }] } },
  ],
];

describe('whatsappValueSchema', () => {
  it.each(valid.map((v) => [v.type, v] as const))('accepts a %s message', (_type, value) => {
    expect(checkValue(whatsappValueSchema, value)).toEqual([]);
  });

  it.each(invalid)('rejects %s', (_what, value) => {
    expect(checkValue(whatsappValueSchema, value).length).toBeGreaterThan(0);
  });
});
