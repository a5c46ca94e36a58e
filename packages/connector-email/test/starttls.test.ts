/**
 * With credentials and no implicit TLS, EmailSink requires STARTTLS by default: a server that
 * does not offer it (or an attacker who strips the offer) gets neither the password nor the
 * message. Runs against the in-repo SMTP dev server, with and without STARTTLS, and a
 * certificate made for the test with the openssl CLI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FatalConnectorError, startSink } from '@omnibus/sdk';
import { EMAIL_ERROR_CODES, EmailSink } from '../src/index.ts';
import { startTlsModeOf } from '../src/config.ts';
import { startSmtpDevServer, type SmtpDevServer } from '../src/dev-server.ts';

const USER = 'omnibus-sender';
const PASSWORD = 'never-in-clear-text';
const scratch = mkdtempSync(join(tmpdir(), 'omnibus-starttls-'));
let certificate: { key: string; cert: string };
let plain: SmtpDevServer;
let encrypting: SmtpDevServer;

beforeAll(async () => {
  // A self-signed certificate for 127.0.0.1, valid for a day: the connector can trust it as its CA.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', join(scratch, 'key.pem'), '-out', join(scratch, 'cert.pem'),
  ], { stdio: 'ignore' });
  certificate = { key: readFileSync(join(scratch, 'key.pem'), 'utf8'), cert: readFileSync(join(scratch, 'cert.pem'), 'utf8') };
  plain = await startSmtpDevServer({ auth: { user: USER, pass: PASSWORD } });
  encrypting = await startSmtpDevServer({ auth: { user: USER, pass: PASSWORD }, starttls: certificate, keepMessages: true });
});

afterAll(async () => {
  await plain?.close();
  await encrypting?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const message = { key: 'ada@example.org', value: { to: 'ada@example.org', subject: 'Hello', text: 'hi' } };
const config = (server: SmtpDevServer, overrides: Record<string, unknown> = {}) => ({
  topics: 'mail',
  'smtp.host': '127.0.0.1',
  'smtp.port': server.port,
  'smtp.user': USER,
  'smtp.password': PASSWORD,
  'smtp.timeout.ms': 5000,
  'email.from': 'noreply@omnibus.test',
  ...overrides,
});

async function sendOnce(rawConfig: Record<string, unknown>) {
  const sink = await startSink(EmailSink, rawConfig);
  try {
    const result = await sink.send([message], { maxAttempts: 1 }).then(
      ([sent]) => sent?.outcome,
      (error: unknown) => error,
    );
    return { result, logs: JSON.stringify(sink.logs) };
  } finally {
    await sink.stop();
  }
}

describe('smtp.starttls', () => {
  it('defaults to require with credentials over a plain connection, to opportunistic otherwise', () => {
    const mode = (raw: Record<string, unknown>) => startTlsModeOf(EmailSink.config.parse({ 'smtp.host': 'h', 'email.from': 'a@b.org', ...raw }));
    expect(mode({ 'smtp.user': 'u', 'smtp.password': 'p' })).toBe('require');
    expect(mode({ 'smtp.user': 'u', 'smtp.password': 'p', 'smtp.port': 25 })).toBe('require');
    expect(mode({ 'smtp.user': 'u', 'smtp.password': 'p', 'smtp.secure': true, 'smtp.port': 465 })).toBe('opportunistic');
    expect(mode({})).toBe('opportunistic');
    expect(mode({ 'smtp.user': 'u', 'smtp.password': 'p', 'smtp.starttls': 'opportunistic' })).toBe('opportunistic');
    expect(mode({ 'smtp.starttls': 'require' })).toBe('require');
  });

  it('with credentials, refuses a server that does not offer STARTTLS: no AUTH, no message, a clear error', async () => {
    const { result, logs } = await sendOnce(config(plain));
    expect(result).toBeInstanceOf(FatalConnectorError);
    expect(result).toMatchObject({ code: EMAIL_ERROR_CODES.starttlsUnavailable, message: expect.stringContaining('did not accept STARTTLS') });
    expect(plain.authAttempts).toBe(0);
    expect(plain.acceptedCount).toBe(0);
    expect(logs).not.toContain(PASSWORD);
  });

  it('with credentials, upgrades where STARTTLS is offered and authenticates only then, trusting smtp.tls.ca', async () => {
    const { result } = await sendOnce(config(encrypting, { 'smtp.tls.ca': certificate.cert }));
    expect(result).toMatchObject({ status: 'sent' });
    expect(encrypting.authAttempts).toBeGreaterThan(0);
    expect(encrypting.authAttemptsInClear).toBe(0);
    expect(encrypting.messages.at(-1)?.encrypted).toBe(true);
  });

  it('does not trust a self-signed certificate without smtp.tls.ca, and sends no password to it', async () => {
    const before = encrypting.authAttempts;
    const { result } = await sendOnce(config(encrypting));
    expect(result).toBeInstanceOf(FatalConnectorError);
    expect(result).toMatchObject({ code: EMAIL_ERROR_CODES.tlsUnverified });
    expect(encrypting.authAttempts).toBe(before);
  });

  it('goes on in clear text only when the operator says so explicitly', async () => {
    const { result } = await sendOnce(config(plain, { 'smtp.starttls': 'opportunistic' }));
    expect(result).toMatchObject({ status: 'sent' });
    expect(plain.authAttemptsInClear).toBe(1);
  });

  it('without credentials keeps sending to a relay without STARTTLS (the demo)', async () => {
    const relay = await startSmtpDevServer();
    try {
      const { result } = await sendOnce({ ...config(relay), 'smtp.user': undefined, 'smtp.password': undefined });
      expect(result).toMatchObject({ status: 'sent' });
      expect(relay.acceptedCount).toBe(1);
    } finally {
      await relay.close();
    }
  });

  it('refuses smtp.tls.ca that is not PEM', () => {
    const infos = EmailSink.config.validate('EmailSink', { ...config(plain), 'smtp.tls.ca': '/etc/ssl/ca.pem' });
    expect(infos.configs.find((c) => c.value.name === 'smtp.tls.ca')?.value.errors).toEqual([expect.stringContaining('BEGIN CERTIFICATE')]);
  });
});
