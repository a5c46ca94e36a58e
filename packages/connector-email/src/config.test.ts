import { describe, expect, it } from 'vitest';
import { ConfigError, Password, startSink } from '@omnibus/sdk';
import { EmailSink } from './index.ts';
import { transportOptions } from './task.ts';

const valid = {
  'smtp.host': 'smtp.example.org',
  'smtp.user': 'mailer',
  'smtp.password': 'not-in-any-response',
  'email.from': 'Example <noreply@example.org>',
};

describe('EmailSink config', () => {
  it('answers validate in Kafka Connect shape, with groups and the password hidden', () => {
    const infos = EmailSink.config.validate('EmailSink', valid);
    expect(infos.name).toBe('EmailSink');
    expect(infos.error_count).toBe(0);
    expect(infos.groups).toEqual(['SMTP Connection', 'SMTP Authentication', 'Throughput', 'Message', 'Providers']);
    const byName = new Map(infos.configs.map((c) => [c.definition.name, c]));
    expect(byName.get('smtp.port')?.definition).toMatchObject({ type: 'INT', default_value: '587', required: false, group: 'SMTP Connection' });
    expect(byName.get('smtp.port')?.value.recommended_values).toEqual(['587', '465', '25', '2525']);
    expect(byName.get('smtp.host')?.definition).toMatchObject({ required: true, importance: 'HIGH' });
    expect(byName.get('smtp.password')?.definition.type).toBe('PASSWORD');
    expect(byName.get('smtp.password')?.value.value).toBe('[hidden]');
    expect(JSON.stringify(infos)).not.toContain('not-in-any-response');
    expect(byName.get('smtp.starttls')?.value.recommended_values).toEqual(['opportunistic', 'require', 'never']);
  });

  it('reports a missing smtp.host and out-of-range values by key', () => {
    const { ['smtp.host']: _host, ...withoutHost } = valid;
    const infos = EmailSink.config.validate('EmailSink', { ...withoutHost, 'smtp.pool.size': '0', 'smtp.starttls': 'sometimes' });
    const errors = Object.fromEntries(infos.configs.map((c) => [c.value.name, c.value.errors]));
    expect(errors['smtp.host']).toEqual(['Missing required configuration "smtp.host" which has no default value.']);
    expect(errors['smtp.pool.size']?.[0]).toContain('Value must be at least 1');
    expect(errors['smtp.starttls']?.[0]).toContain('String must be one of: opportunistic, require, never');
    expect(infos.error_count).toBe(3);
  });

  it('refuses to start without smtp.host', async () => {
    const { ['smtp.host']: _host, ...withoutHost } = valid;
    const starting = startSink(EmailSink, withoutHost);
    await expect(starting).rejects.toBeInstanceOf(ConfigError);
    await expect(starting).rejects.toMatchObject({ errors: { 'smtp.host': [expect.stringContaining('Missing required configuration')] } });
  });

  it('parses Kafka-style strings with defaults', () => {
    const config = EmailSink.config.parse({ ...valid, 'smtp.port': '2525', 'smtp.secure': 'false' });
    expect(config['smtp.port']).toBe(2525);
    expect(config['smtp.secure']).toBe(false);
    expect(config['smtp.pool.size']).toBe(5);
    // Unset, STARTTLS is required because credentials are set (see startTlsModeOf).
    expect(config['smtp.starttls']).toBeUndefined();
    expect(config['smtp.password']).toBeInstanceOf(Password);
    expect(String(config['smtp.password'])).toBe('[hidden]');
  });

  it('checks keys against each other', () => {
    const check = (raw: Record<string, unknown>) => EmailSink.validate!(EmailSink.config.parse(raw));
    expect(check(valid)).toEqual({});
    const { ['smtp.user']: _user, ...passwordOnly } = valid;
    expect(Object.keys(check(passwordOnly))).toEqual(['smtp.user']);
    expect(Object.keys(check({ ...valid, 'smtp.secure': true, 'smtp.starttls': 'require' }))).toEqual(['smtp.starttls']);
    expect(Object.keys(check({ ...valid, 'email.from': 'noreply@localhost_' }))).toEqual(['email.message.id.domain']);
    expect(check({ ...valid, 'email.from': 'noreply@localhost_', 'email.message.id.domain': 'mail.example.org' })).toEqual({});
  });

  it('builds a pooled transport whose rate limit matches smtp.rate.limit.per.second', () => {
    const options = (raw: Record<string, unknown>) => transportOptions(EmailSink.config.parse({ ...valid, ...raw }));
    expect(options({})).toMatchObject({ pool: true, maxConnections: 5, maxRequeues: 0, auth: { user: 'mailer', pass: 'not-in-any-response' } });
    expect(options({}).rateLimit).toBeUndefined();
    expect(options({ 'smtp.rate.limit.per.second': 50 })).toMatchObject({ rateLimit: 50, rateDelta: 1000 });
    expect(options({ 'smtp.rate.limit.per.second': 2.5 })).toMatchObject({ rateLimit: 3, rateDelta: 1200 });
    expect(options({ 'smtp.rate.limit.per.second': 0.5 })).toMatchObject({ rateLimit: 1, rateDelta: 2000 });
    expect(options({})).toMatchObject({ requireTLS: true, ignoreTLS: false });
    expect(options({ 'smtp.starttls': 'require' })).toMatchObject({ requireTLS: true, ignoreTLS: false });
    expect(options({ 'smtp.starttls': 'opportunistic' })).toMatchObject({ requireTLS: false, ignoreTLS: false });
    expect(options({ 'smtp.starttls': 'never' })).toMatchObject({ requireTLS: false, ignoreTLS: true });
  });

  it('is described for the plugin registry', () => {
    expect(EmailSink).toMatchObject({ type: 'sink', className: 'EmailSink', aliases: ['@omnibus/connector-email/EmailSink'] });
    expect(EmailSink.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});
