import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigProviders, hasPlaceholder, parseProperties, restorePlaceholders, UnresolvedConfigError } from './config-providers.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-providers-'));
  await writeFile(
    join(dir, 'smtp.properties'),
    ['# SMTP credentials', '! also a comment', 'smtp.user = mailer', 'smtp.password=s3cr=et', 'long: first \\', '   second', 'path=C\\:\\\\dir', ''].join('\n'),
  );
  await writeFile(join(dir, 'twilio.json'), JSON.stringify({ authToken: 'tok-123', port: 2525, nested: { a: 1 } }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('config providers', () => {
  const providers = ConfigProviders.defaults({ env: { SMTP_HOST: 'mail.example.org', EMPTY: '' } });

  it('resolves env and file placeholders, several per value, and leaves plain values alone', async () => {
    const resolved = await providers.resolve({
      'smtp.host': '${env:SMTP_HOST}',
      'smtp.password': `\${file:${dir}/smtp.properties:smtp.password}`,
      'smtp.url': `smtp://\${file:${dir}/smtp.properties:smtp.user}@\${env:SMTP_HOST}:\${file:${dir}/twilio.json:port}`,
      'twilio.token': `\${file:${dir}/twilio.json:authToken}`,
      nested: `\${file:${dir}/twilio.json:nested}`,
      empty: '${env:EMPTY}',
      plain: 'no placeholder here $ {x}',
    });
    expect(resolved).toEqual({
      'smtp.host': 'mail.example.org',
      'smtp.password': 's3cr=et',
      'smtp.url': 'smtp://mailer@mail.example.org:2525',
      'twilio.token': 'tok-123',
      nested: '{"a":1}',
      empty: '',
      plain: 'no placeholder here $ {x}',
    });
  });

  it('names every unresolved placeholder and never prints a resolved value', async () => {
    const attempt = providers.resolve({
      a: '${env:MISSING_VAR}',
      b: `\${file:${dir}/smtp.properties:nope}`,
      c: `\${file:${dir}/absent.properties:x}`,
      e: `\${file:${dir}/smtp.properties:smtp.password}`,
    });
    await expect(attempt).rejects.toBeInstanceOf(UnresolvedConfigError);
    const error = (await attempt.catch((e: unknown) => e)) as UnresolvedConfigError;
    expect(error.code).toBe('OMNI_ERR_CONFIG_PROVIDER_UNRESOLVED');
    expect(error.unresolved.map((u) => u.configKey)).toEqual(['a', 'b', 'c']);
    expect(error.message).toContain('environment variable MISSING_VAR is not set');
    expect(error.message).toContain(`key "nope" not found in ${dir}/smtp.properties`);
    expect(error.message).toContain('ENOENT');
    expect(error.message).not.toContain('s3cr=et');
  });

  it('leaves text that only looks like a placeholder of an unknown provider as written', async () => {
    const config = { subject: 'Hello ${user:name}', body: '${vault:secret/x:y} and ${env:SMTP_HOST}' };
    expect(await providers.resolve(config)).toEqual({ subject: 'Hello ${user:name}', body: '${vault:secret/x:y} and mail.example.org' });
  });

  it('tryResolve keeps what it cannot resolve as written and says which keys those are', async () => {
    const { config, unresolvedKeys } = await providers.tryResolve({ host: '${env:SMTP_HOST}', password: '${env:NOPE}' });
    expect(config).toEqual({ host: 'mail.example.org', password: '${env:NOPE}' });
    expect([...unresolvedKeys]).toEqual(['password']);
  });

  it('reads Java properties: separators, comments, continuations, escapes', () => {
    const entries = parseProperties('a=1\nb : 2\nc 3\n# x=9\nd=one \\\n  two\ne=\\u0041\\tB\nf\n  g = spaced  ');
    expect(Object.fromEntries(entries)).toEqual({ a: '1', b: '2', c: '3', d: 'one two', e: 'A\tB', f: '', g: 'spaced  ' });
  });

  it('recognises placeholders and restores them in computed task configs', () => {
    expect(hasPlaceholder('${env:X}')).toBe(true);
    expect(hasPlaceholder('${env:X}')).toBe(true);
    expect(hasPlaceholder('plain')).toBe(false);
    const raw = { pass: '${env:P}', host: 'h', other: '${env:O}' };
    const resolved = { pass: 'secret', host: 'h', other: 'o' };
    expect(restorePlaceholders(raw, resolved, { pass: 'secret', host: 'h', other: 'changed', extra: 'secret' })).toEqual({
      pass: '${env:P}',
      host: 'h',
      other: 'changed',
      extra: 'secret',
    });
  });
});
