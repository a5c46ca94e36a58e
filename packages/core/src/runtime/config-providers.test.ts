import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RetriableError } from '@omnibus/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigProviders,
  envNameAllowed,
  hasPlaceholder,
  isOnlyPlaceholders,
  KnownSecrets,
  parseProperties,
  restorePlaceholders,
  Scrubber,
  UNRESOLVED_REASON,
  UnresolvedConfigError,
} from './config-providers.ts';

let dir: string;
/** Beside the allowed directory, never allowed: what an attacker would aim at. */
let outside: string;
beforeAll(async () => {
  const root = await realpath(await mkdtemp(join(tmpdir(), 'omnibus-providers-')));
  dir = join(root, 'secrets');
  outside = join(root, 'private');
  await mkdir(dir);
  await mkdir(outside);
  await writeFile(join(outside, 'worker.json'), JSON.stringify({ 'rest.auth.basic.users': 'admin:W0rker-Pass' }));
  await writeFile(join(outside, 'other.properties'), 'k=outside-value\n');
  // Links inside the allowed directory that lead out of it: to a file, and to a directory.
  await symlink(join(outside, 'worker.json'), join(dir, 'link-to-worker.json'));
  await symlink(outside, join(dir, 'link-to-private'));
  await writeFile(
    join(dir, 'smtp.properties'),
    ['# SMTP credentials', '! also a comment', 'smtp.user = mailer', 'smtp.password=s3cr=et', 'long: first \\', '   second', 'path=C\\:\\\\dir', ''].join('\n'),
  );
  await writeFile(join(dir, 'twilio.json'), JSON.stringify({ authToken: 'tok-123', port: 2525, nested: { a: 1 } }));
});
afterAll(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

describe('config providers', () => {
  const providers = () => ConfigProviders.defaults({ env: { SMTP_HOST: 'mail.example.org', EMPTY: '' }, envAllowedNames: ['SMTP_HOST', 'EMPTY'], fileAllowedPaths: [dir] });

  it('resolves env and file placeholders, several per value, and leaves plain values alone', async () => {
    const resolved = await providers().resolve({
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
    const attempt = providers().resolve({
      a: '${env:MISSING_VAR}',
      b: `\${file:${dir}/smtp.properties:nope}`,
      c: `\${file:${dir}/absent.properties:x}`,
      e: `\${file:${dir}/smtp.properties:smtp.password}`,
    });
    await expect(attempt).rejects.toBeInstanceOf(UnresolvedConfigError);
    const error = (await attempt.catch((e: unknown) => e)) as UnresolvedConfigError;
    expect(error.code).toBe('OMNI_ERR_CONFIG_PROVIDER_UNRESOLVED');
    expect(error.unresolved.map((u) => u.configKey)).toEqual(['a', 'b', 'c']);
    expect(error.message).toContain('"a" uses ${env:MISSING_VAR}, which could not be resolved');
    expect(error.message).not.toContain('s3cr=et');
    // One reason for every cause: nothing tells a missing file from a missing key.
    expect(error.unresolved.map((u) => u.reason)).toEqual([UNRESOLVED_REASON, UNRESOLVED_REASON, UNRESOLVED_REASON]);
    expect(error.message).not.toMatch(/ENOENT|not found|not set/);
  });

  it('leaves text that only looks like a placeholder of an unknown provider as written', async () => {
    const config = { subject: 'Hello ${user:name}', body: '${vault:secret/x:y} and ${env:SMTP_HOST}' };
    expect(await providers().resolve(config)).toEqual({ subject: 'Hello ${user:name}', body: '${vault:secret/x:y} and mail.example.org' });
  });

  it('tryResolve keeps what it cannot resolve as written and says which keys those are', async () => {
    const { config, unresolvedKeys } = await providers().tryResolve({ host: '${env:SMTP_HOST}', password: '${env:NOPE}' });
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

describe('allow-lists', () => {
  const unresolvedReasons = async (providers: ConfigProviders, config: Record<string, string>) => {
    const error = (await providers.resolve(config).catch((e: unknown) => e)) as UnresolvedConfigError;
    expect(error).toBeInstanceOf(UnresolvedConfigError);
    return { reasons: error.unresolved.map((u) => u.reason), message: error.message };
  };

  it('refuses every ${file:} and ${env:} placeholder by default', async () => {
    const providers = ConfigProviders.defaults({ env: { HOME: '/root', SECRET: 's' } });
    const { reasons, message } = await unresolvedReasons(providers, {
      a: '${env:HOME}',
      b: `\${file:${dir}/smtp.properties:smtp.password}`,
      c: '${file:/etc/passwd:root}',
    });
    expect(reasons).toEqual([UNRESOLVED_REASON, UNRESOLVED_REASON, UNRESOLVED_REASON]);
    expect(message).not.toContain('s3cr=et');
    expect(message).not.toContain('/root');
  });

  it('reads files only under the allowed directories: no .., no symlink, no relative escape, no worker config', async () => {
    const providers = ConfigProviders.defaults({ fileAllowedPaths: [dir] });
    const attempts = {
      dotdot: `\${file:${dir}/../private/worker.json:rest.auth.basic.users}`,
      absolute: `\${file:${outside}/worker.json:rest.auth.basic.users}`,
      linkedFile: `\${file:${dir}/link-to-worker.json:rest.auth.basic.users}`,
      linkedDir: `\${file:${dir}/link-to-private/other.properties:k}`,
      prefixTwin: `\${file:${dir}-twin/x.properties:k}`,
      relative: '${file:../../../../../../../../etc/passwd:root}',
      directory: `\${file:${dir}:x}`,
      etc: '${file:/etc/passwd:root}',
      missingFile: `\${file:${dir}/absent.properties:k}`,
      missingKey: `\${file:${dir}/smtp.properties:absent}`,
    };
    const { reasons, message } = await unresolvedReasons(providers, attempts);
    expect(reasons).toHaveLength(Object.keys(attempts).length);
    // The same answer for a file that is outside, missing, a directory, or lacks the key.
    expect(new Set(reasons)).toEqual(new Set([UNRESOLVED_REASON]));
    expect(message).not.toMatch(/W0rker-Pass|outside-value|root:|ENOENT|EISDIR|allowed\.paths/);
    // Inside the directory, through a path with .. that stays inside, it reads.
    expect(await providers.resolve({ p: `\${file:${dir}/../secrets/smtp.properties:smtp.password}` })).toEqual({ p: 's3cr=et' });
  });

  it('allows a directory reached through a symlink once resolved, and everything under a parent', async () => {
    const viaLink = ConfigProviders.defaults({ fileAllowedPaths: [join(dir, 'link-to-private')] });
    expect(await viaLink.resolve({ k: `\${file:${outside}/other.properties:k}` })).toEqual({ k: 'outside-value' });
    const parent = ConfigProviders.defaults({ fileAllowedPaths: [join(dir, '..')] });
    expect(await parent.resolve({ k: `\${file:${dir}/link-to-private/other.properties:k}` })).toEqual({ k: 'outside-value' });
  });

  it('logs the cause for the operator, and only there', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = { warn: (o: Record<string, unknown>) => lines.push(o), debug: () => undefined } as never;
    const providers = ConfigProviders.defaults({ fileAllowedPaths: [dir], logger });
    await providers.resolve({ a: `\${file:${outside}/worker.json:x}` }).catch(() => undefined);
    expect(lines).toHaveLength(1);
    expect(String(lines[0]?.cause)).toContain('is not under config.providers.file.allowed.paths');
  });

  it('reads env names only as listed: exact names and prefixes ending in *', async () => {
    expect(envNameAllowed('SMTP_PASSWORD', ['SMTP_*'])).toBe(true);
    expect(envNameAllowed('SMTP', ['SMTP_*'])).toBe(false);
    expect(envNameAllowed('PATH', ['PATHS', 'PAT'])).toBe(false);
    expect(envNameAllowed('ANY', ['*'])).toBe(true);
    // The worker's own settings are reached only by their exact names.
    expect(envNameAllowed('OMNIBUS_REST_AUTH_BASIC_USERS', ['*'])).toBe(false);
    expect(envNameAllowed('OMNIBUS_REST_AUTH_BEARER_TOKENS', ['OMNIBUS_*'])).toBe(false);
    expect(envNameAllowed('OMNIBUS_REST_AUTH_BEARER_TOKENS', ['OMNIBUS_REST_AUTH_BEARER_TOKENS'])).toBe(true);
    const providers = ConfigProviders.defaults({ env: { OMNI_A: 'a-value', OTHER: 'other-value', OMNI: 'x' }, envAllowedNames: ['OMNI_*', 'EXACT'] });
    expect(await providers.resolve({ a: '${env:OMNI_A}' })).toEqual({ a: 'a-value' });
    const { reasons, message } = await unresolvedReasons(providers, { b: '${env:OTHER}', c: '${env:EXACT}', d: '${env:OMNI}' });
    // Set but not allowed, allowed but not set: the same answer.
    expect(reasons).toEqual([UNRESOLVED_REASON, UNRESOLVED_REASON, UNRESOLVED_REASON]);
    expect(message).not.toContain('other-value');
    // Names that are not variables of the environment but properties of every object.
    const anything = ConfigProviders.defaults({ env: { A: 'a' }, envAllowedNames: ['*'] });
    const inherited = await anything.tryResolve({ p: '${env:__proto__}', c: '${env:constructor}', h: '${env:hasOwnProperty}' });
    expect([...inherited.unresolvedKeys].sort()).toEqual(['c', 'h', 'p']);
  });

  it('does not resolve placeholders nested in a path or in a resolved value', async () => {
    const providers = ConfigProviders.defaults({ env: { NAME: 'smtp.properties', INNER: '${env:NAME}' }, envAllowedNames: ['*'], fileAllowedPaths: [dir] });
    // A value holding a placeholder is taken as written, not resolved again.
    expect(await providers.resolve({ v: '${env:INNER}' })).toEqual({ v: '${env:NAME}' });
    const nested = await providers.resolve({ v: `\${file:${dir}/\${env:NAME}:smtp.password}` }).catch((e: unknown) => e);
    expect(nested).toBeInstanceOf(UnresolvedConfigError);
    expect(String(nested)).not.toContain('s3cr=et');
  });
});

describe('scrubbing', () => {
  it('takes resolved values back to their placeholder and secrets to [hidden], in every quoted form', async () => {
    const providers = ConfigProviders.defaults({ env: { HOST: 'db.internal', PASS: 'p"a\\ss w/rd' }, envAllowedNames: ['*'] });
    const isSecret = (key: string) => key === 'password' || key === 'literal.password';
    const { scrubber } = await providers.resolveScrubbed(
      { host: '${env:HOST}', password: '${env:PASS}', 'literal.password': 'Lit-Secret', 'tasks.max': '2' },
      isSecret,
    );
    const text = [
      "connect ECONNREFUSED db.internal:25",
      `bad password ${JSON.stringify({ password: 'p"a\\ss w/rd' })}`,
      `url: smtp://u:${encodeURIComponent('p"a\\ss w/rd')}@x`,
      'Lit-Secret rejected',
      'at Foo (/app/x.ts:12:2)',
    ].join('\n');
    const scrubbed = scrubber.scrub(text);
    expect(scrubbed).toContain('connect ECONNREFUSED ${env:HOST}:25');
    expect(scrubbed).toContain('[hidden] rejected');
    expect(scrubbed).not.toContain('db.internal');
    expect(scrubbed).not.toMatch(/w\/rd|w%2Frd|Lit-Secret/);
    // Literal non-secret values stay, and digits in a trace are left alone.
    expect(scrubbed).toContain('/app/x.ts:12:2');
  });

  it('replaces a short value only where it stands alone', () => {
    const scrubber = new Scrubber([{ value: 'ab', replacement: '[hidden]' }]);
    expect(scrubber.scrub('tab ab "ab" abc')).toBe('tab [hidden] "[hidden]" abc');
  });

  it('copies an error with its class and plain fields scrubbed, and without anything else', () => {
    const scrubber = new Scrubber([{ value: 'tok-123456', replacement: '[hidden]' }]);
    class Socket {
      token = 'tok-123456';
    }
    const error = Object.assign(new RetriableError('401 for tok-123456', { code: 'EAUTH', retryAfterMs: 1500 }), {
      config: { headers: { Authorization: 'Bearer tok-123456' } },
      socket: new Socket(),
      cause: new Error('tok-123456'),
    });
    const shown = scrubber.error(error);
    expect(shown).toBeInstanceOf(RetriableError);
    expect(shown.message).toBe('401 for [hidden]');
    expect(shown.stack).toContain('401 for [hidden]');
    expect(shown).toMatchObject({ code: 'EAUTH', retryAfterMs: 1500, config: { headers: { Authorization: 'Bearer [hidden]' } } });
    expect(shown).not.toHaveProperty('socket');
    expect(JSON.stringify({ ...shown, stack: shown.stack, message: shown.message, cause: (shown as { cause?: unknown }).cause })).not.toContain('tok-123456');
  });

  it('keeps log lines JSON, scrubbing their strings and the numbers that are a known value', () => {
    const known = new KnownSecrets();
    known.remember(new Scrubber([{ value: '2525', replacement: '${env:PORT}' }, { value: 'ab', replacement: '${env:AB}' }, { value: 'Pass-Word-1', replacement: '[hidden]' }]));
    const line = JSON.stringify({ level: 30, time: 2525, pid: 2525, port: 2525, n: 12, msg: 'login Pass-Word-1 ab tab', nested: { e: '"Pass-Word-1"' } });
    const scrubbed = JSON.parse(known.scrubLine(line)) as Record<string, unknown>;
    expect(scrubbed).toEqual({ level: 30, time: 2525, pid: 2525, port: '${env:PORT}', n: 12, msg: 'login [hidden] ${env:AB} tab', nested: { e: '"[hidden]"' } });
    expect(known.scrubLine('{"msg":"nothing known"}\n')).toBe('{"msg":"nothing known"}\n');
  });

  it('shows as written only values made of env and file placeholders', () => {
    expect(isOnlyPlaceholders('${env:A}${file:/x:y}')).toBe(true);
    expect(isOnlyPlaceholders('${vault:a}')).toBe(false);
    expect(isOnlyPlaceholders('x${env:A}')).toBe(false);
    expect(isOnlyPlaceholders('${file:${env:A}:k}')).toBe(false);
  });
});
