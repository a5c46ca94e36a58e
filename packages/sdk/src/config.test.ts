import { inspect, format } from 'node:util';
import { Ajv } from 'ajv';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { ConfigSpec, Password, validators } from './config.ts';
import type { ParsedConfig } from './connector.ts';
import { ConfigError } from './errors.ts';

const spec = ConfigSpec.builder()
  .string('smtp.host', { documentation: 'SMTP server host.', importance: 'HIGH', group: 'Connection' })
  .int('smtp.port', { documentation: 'SMTP port.', default: 587, group: 'Connection', validator: validators.range(1, 65535) })
  .boolean('smtp.tls', { documentation: 'Use TLS | STARTTLS.', optional: true, group: 'Connection' })
  .password('smtp.password', { documentation: 'SMTP password.', importance: 'HIGH', group: 'Credentials' })
  .list('recipients.allowed', { documentation: 'Domains that may be mailed.', default: ['example.org', 'example.com'] })
  .double('rate', { documentation: 'Sends per second.', default: 0.5, validator: validators.atLeast(0) })
  .long('timeout.ms', { documentation: 'Timeout.', default: 30_000 })
  .string('mode', {
    documentation: 'Delivery mode.',
    default: 'smtp',
    validator: validators.oneOf('smtp', 'api'),
    recommended: ['smtp', 'api'],
  });

type Parsed = ParsedConfig<typeof spec>;

describe('ConfigSpec types', () => {
  it('infers the parsed config from the declaration', () => {
    // These lines fail to compile (`tsc -p tsconfig.json`) if the inferred type is wrong.
    expectTypeOf<Parsed['smtp.host']>().toEqualTypeOf<string>();
    expectTypeOf<Parsed['smtp.port']>().toEqualTypeOf<number>();
    expectTypeOf<Parsed['smtp.tls']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<Parsed['smtp.password']>().toEqualTypeOf<Password>();
    expectTypeOf<Parsed['recipients.allowed']>().toEqualTypeOf<string[]>();
    const parsed = spec.parse({ 'smtp.host': 'mail', 'smtp.password': 'pw' });
    const shaped = parsed satisfies {
      'smtp.host': string;
      'smtp.port': number;
      'smtp.tls': boolean | undefined;
      'smtp.password': Password;
      'recipients.allowed': string[];
      rate: number;
      'timeout.ms': number;
      mode: string;
    };
    // @ts-expect-error a port is a number, never a string
    const port: string = parsed['smtp.port'];
    // @ts-expect-error a password is a Password, not its text
    const password: string = parsed['smtp.password'];
    expect([shaped['smtp.port'], port, String(password)]).toEqual([587, 587, '[hidden]']);
  });
});

describe('ConfigSpec.parse', () => {
  it('converts Kafka-style strings to typed values and applies defaults', () => {
    const parsed = spec.parse({
      'smtp.host': '  mail.example.org ',
      'smtp.port': ' 25 ',
      'smtp.tls': 'TRUE',
      'smtp.password': ' p@ss with spaces ',
      'recipients.allowed': 'a.org, b.org,,',
      rate: '2.5',
    });
    expect(parsed['smtp.host']).toBe('mail.example.org');
    expect(parsed['smtp.port']).toBe(25);
    expect(parsed['smtp.tls']).toBe(true);
    expect(parsed['smtp.password']).toBeInstanceOf(Password);
    expect(parsed['smtp.password'].value()).toBe(' p@ss with spaces ');
    expect(parsed['recipients.allowed']).toEqual(['a.org', 'b.org']);
    expect(parsed.rate).toBe(2.5);
    expect(parsed['timeout.ms']).toBe(30_000);
    expect(parsed.mode).toBe('smtp');
  });

  it('accepts JSON values as well as strings', () => {
    const parsed = spec.parse({ 'smtp.host': 'h', 'smtp.port': 465, 'smtp.tls': false, 'smtp.password': 'x', 'recipients.allowed': ['x.org'] });
    expect([parsed['smtp.port'], parsed['smtp.tls'], parsed['recipients.allowed']]).toEqual([465, false, ['x.org']]);
  });

  it('leaves an optional key without a value undefined, and keeps undeclared keys as given', () => {
    const parsed = spec.parse({ 'smtp.host': 'h', 'smtp.password': 'x', 'custom.extra': 'kept' }) as Parsed & { 'custom.extra': string };
    expect(parsed['smtp.tls']).toBeUndefined();
    expect('smtp.tls' in parsed).toBe(false);
    expect(parsed['custom.extra']).toBe('kept');
  });

  it('reports every problem at once, by key', () => {
    let error: unknown;
    try {
      spec.parse({ 'smtp.port': '70000', 'smtp.tls': 'yes', rate: 'fast', mode: 'pigeon', 'timeout.ms': '1.5' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { errors, code } = error as ConfigError;
    expect(code).toBe('OMNI_ERR_CONFIG_INVALID');
    expect(Object.keys(errors).sort()).toEqual(['mode', 'rate', 'smtp.host', 'smtp.password', 'smtp.port', 'smtp.tls', 'timeout.ms']);
    expect(errors['smtp.host']).toEqual(['Missing required configuration "smtp.host" which has no default value.']);
    expect(errors['smtp.port']?.[0]).toContain('Value must be no more than 65535');
    expect(errors['smtp.tls']?.[0]).toContain('Expected value to be either true or false');
    expect(errors.mode?.[0]).toContain('String must be one of: smtp, api');
    expect(errors['timeout.ms']?.[0]).toContain('Expected an integer');
  });

  it('refuses an INT beyond 32 bits but accepts it as a LONG', () => {
    const ints = ConfigSpec.builder().int('i', { documentation: '', optional: true }).long('l', { documentation: '', optional: true });
    expect(() => ints.parse({ i: '2147483648' })).toThrow(/32-bit integer/);
    expect(ints.parse({ i: '-2147483648', l: '9007199254740991' })).toEqual({ i: -2147483648, l: 9007199254740991 });
    expect(() => ints.parse({ l: '9007199254740993' })).toThrow(ConfigError);
  });

  it('never puts a secret in an error message', () => {
    const secrets = ConfigSpec.builder().password('api.key', {
      documentation: '',
      validator: { describe: 'at least 12 characters', check: (p) => (p.value().length < 12 ? 'too short' : undefined) },
    });
    const attempt = (value: unknown) => {
      try {
        secrets.parse({ 'api.key': value });
        return '';
      } catch (error) {
        return (error as ConfigError).message + JSON.stringify((error as ConfigError).errors);
      }
    };
    const short = attempt('hunter2');
    expect(short).toContain('too short');
    expect(short).not.toContain('hunter2');
    const wrongType = attempt(123456789);
    expect(wrongType).toContain('[hidden]');
    expect(wrongType).not.toContain('123456789');
  });

  it('rejects a key declared twice', () => {
    expect(() => ConfigSpec.builder().string('a', { documentation: '' }).int('a', { documentation: '' })).toThrow(/declared twice/);
  });
});

describe('Password', () => {
  const password = new Password('correct horse battery staple');

  it('prints [hidden] however it is turned into text', () => {
    expect(String(password)).toBe('[hidden]');
    expect(`${password}`).toBe('[hidden]');
    expect(JSON.stringify({ password })).toBe('{"password":"[hidden]"}');
    expect(inspect({ nested: { password } }, { depth: 5 })).not.toContain('horse');
    expect(format('%s %o %j', password, { password }, { password })).not.toContain('horse');
  });

  it('gives the secret to whoever asks for it explicitly', () => {
    expect(password.value()).toBe('correct horse battery staple');
  });
});

describe('ConfigSpec.validate (Kafka ConfigInfos)', () => {
  it("answers Kafka's shape, counting every error and hiding secrets", () => {
    const infos = spec.validate('EmailSink', { 'smtp.port': '0', 'smtp.password': 'hunter2', mode: 'api' });
    expect(infos.name).toBe('EmailSink');
    expect(infos.groups).toEqual(['Connection', 'Credentials']);
    expect(infos.error_count).toBe(2);
    const byName = Object.fromEntries(infos.configs.map((c) => [c.definition.name, c]));
    expect(byName['smtp.host']?.value.errors).toEqual(['Missing required configuration "smtp.host" which has no default value.']);
    expect(byName['smtp.port']?.value).toMatchObject({ value: '0', errors: [expect.stringContaining('at least 1')] });
    expect(byName['smtp.password']?.value.value).toBe('[hidden]');
    expect(JSON.stringify(infos)).not.toContain('hunter2');
    expect(byName['smtp.port']?.definition).toEqual({
      name: 'smtp.port',
      type: 'INT',
      required: false,
      default_value: '587',
      importance: 'MEDIUM',
      documentation: 'SMTP port.',
      group: 'Connection',
      width: 'NONE',
      display_name: 'smtp.port',
      dependents: [],
      order: 2,
    });
    expect(byName['smtp.host']?.definition).toMatchObject({ required: true, default_value: null, order: 1 });
    expect(byName['recipients.allowed']?.definition).toMatchObject({ default_value: 'example.org,example.com', group: null });
    expect(byName.mode?.value).toMatchObject({ value: 'api', recommended_values: ['smtp', 'api'], errors: [], visible: true });
  });

  it('answers error_count 0 for a valid config', () => {
    expect(spec.validate('EmailSink', { 'smtp.host': 'h', 'smtp.password': 'p' }).error_count).toBe(0);
  });
});

describe('ConfigSpec.jsonSchema', () => {
  const ajv = new Ajv({ strict: false });
  const validate = ajv.compile(spec.jsonSchema());

  it('accepts what parse accepts, strings or JSON values', () => {
    expect(validate({ 'smtp.host': 'h', 'smtp.password': 'p', 'smtp.port': '25', 'smtp.tls': 'false', rate: 1.5 })).toBe(true);
    expect(validate({ 'smtp.host': 'h', 'smtp.password': 'p', 'smtp.port': 25, 'recipients.allowed': ['a'] })).toBe(true);
  });

  it('rejects missing required keys and wrongly typed values', () => {
    expect(validate({ 'smtp.password': 'p' })).toBe(false);
    expect(validate({ 'smtp.host': 'h', 'smtp.password': 'p', 'smtp.port': 'twenty' })).toBe(false);
    expect(validate({ 'smtp.host': 'h', 'smtp.password': 'p', 'smtp.tls': 'maybe' })).toBe(false);
  });

  it('marks secrets writeOnly and carries documentation, defaults and examples', () => {
    const schema = spec.jsonSchema() as { properties: Record<string, Record<string, unknown>>; required: string[] };
    expect(schema.required).toEqual(['smtp.host', 'smtp.password']);
    expect(schema.properties['smtp.password']).toMatchObject({ writeOnly: true, type: 'string' });
    expect(schema.properties['smtp.port']).toMatchObject({ default: 587, description: 'SMTP port.' });
    expect(schema.properties.mode).toMatchObject({ examples: ['smtp', 'api'] });
  });
});

describe('ConfigSpec.toMarkdown', () => {
  const markdown = spec.toMarkdown('EmailSink', 'Sends email over SMTP.');

  it('renders a title, the intro and one table per group', () => {
    const lines = markdown.split('\n');
    expect(lines.slice(0, 3)).toEqual(['# EmailSink', '', 'Sends email over SMTP.']);
    expect(lines.filter((l) => l.startsWith('## '))).toEqual(['## Connection', '## Credentials', '## General']);
  });

  it('documents each key with its type, default, importance and valid values, escaping pipes', () => {
    expect(markdown).toContain('| `smtp.host` | string | *required* | high | SMTP server host. |');
    expect(markdown).toContain('| `smtp.port` | int | `587` | medium | SMTP port. Valid values: [1,...,65535]. |');
    expect(markdown).toContain('| `smtp.tls` | boolean |  | medium | Use TLS \\| STARTTLS. |');
    expect(markdown).toContain('| `mode` | string | `smtp` | medium | Delivery mode. Valid values: [smtp, api]. |');
  });

  it('shows an empty default as "" rather than an empty code span', () => {
    const empty = ConfigSpec.builder().list('topics', { documentation: 'Topics.', default: [] }).string('prefix', { documentation: 'Prefix.', default: '' });
    const text = empty.toMarkdown('Empty');
    expect(text).toContain('| `topics` | list | `""` | medium | Topics. |');
    expect(text).toContain('| `prefix` | string | `""` | medium | Prefix. |');
  });
});

describe('ConfigSpec.merge', () => {
  it("keeps the first spec's keys first and its definition of a shared key", () => {
    const common = ConfigSpec.builder().string('name', { documentation: 'common name' }).int('tasks.max', { documentation: '', default: 1 });
    const own = ConfigSpec.builder().string('name', { documentation: 'own name' }).string('host', { documentation: '' });
    const merged = common.merge(own);
    expect(merged.keys.map((k) => k.name)).toEqual(['name', 'tasks.max', 'host']);
    expect(merged.key('name')?.documentation).toBe('common name');
    expect(merged.isSecret('host')).toBe(false);
  });
});

describe('validators', () => {
  it('check and describe themselves', () => {
    expect(validators.url().check('ftp://x')).toMatch(/http/);
    expect(validators.url().check('not a url')).toMatch(/valid URL/);
    expect(validators.url().check('https://graph.example.org/v21.0')).toBeUndefined();
    expect(validators.pattern(/^\+\d+$/, 'an E.164 number').check('0612')).toBe('Value must be an E.164 number');
    expect(validators.nonEmptyList().check([])).toBeDefined();
    expect(validators.nonEmptyString().check('  ')).toBeDefined();
    expect(validators.range(1, 3).describe).toBe('[1,...,3]');
  });
});
