// SMPP over TLS (smpp.tls) against the development SMSC served over TLS, with certificates
// made for the test by the openssl CLI: the bind (and its password) goes only to an SMSC
// whose certificate verifies.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FatalConnectorError, startSink, type RawConfig, type SinkHarness } from '@omnibus/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSmscDevServer, type SmscDevServer } from '../src/dev-server.ts';
import { SmsErrorCode, SmsSink } from '../src/index.ts';

const SYSTEM_ID = 'omnibus';
const PASSWORD = 'tls-only';
const scratch = mkdtempSync(join(tmpdir(), 'omnibus-smpp-tls-'));

interface Pem {
  key: string;
  cert: string;
}
/** A self-signed certificate valid for a day, for the given subjectAltName. */
function certificate(name: string, altNames: string): Pem {
  const key = join(scratch, `${name}.key`);
  const cert = join(scratch, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${altNames}`, '-keyout', key, '-out', cert], {
    stdio: 'ignore',
  });
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

let local: Pem;
let otherName: Pem;
beforeAll(() => {
  local = certificate('smsc-local', 'IP:127.0.0.1,DNS:localhost');
  otherName = certificate('smsc-other', 'DNS:smsc.example.org');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const running: Array<SmscDevServer | SinkHarness> = [];
afterEach(async () => {
  for (const part of running.splice(0).reverse()) {
    if ('send' in part) {
      await part.stop();
      expect(JSON.stringify(part.logs)).not.toContain(PASSWORD);
    } else {
      await part.close();
    }
  }
});

async function smsc(tls?: Pem): Promise<SmscDevServer> {
  const server = await startSmscDevServer({ credentials: { systemId: SYSTEM_ID, password: PASSWORD }, ...(tls ? { tls } : {}) });
  running.push(server);
  return server;
}

const config = (server: SmscDevServer, overrides: RawConfig = {}): RawConfig => ({
  topics: 'sms',
  'sms.transport': 'smpp',
  'sms.from': 'Omnibus',
  'smpp.host': server.host,
  'smpp.port': String(server.port),
  'smpp.system.id': SYSTEM_ID,
  'smpp.password': PASSWORD,
  'smpp.reconnect.backoff.initial.ms': '10',
  'smpp.reconnect.backoff.max.ms': '100',
  'smpp.request.timeout.ms': '2000',
  ...overrides,
});

async function start(rawConfig: RawConfig): Promise<SinkHarness> {
  const sink = await startSink(SmsSink, rawConfig);
  running.push(sink);
  return sink;
}

describe('SMPP over TLS', () => {
  it('binds over TLS to an SMSC whose certificate smpp.tls.ca vouches for, and delivers', async () => {
    const server = await smsc(local);
    const sink = await start(config(server, { 'smpp.tls': 'true', 'smpp.tls.ca': local.cert }));
    const [sent] = await sink.send([{ key: '+33612345678', value: { to: '+33612345678', text: 'over TLS' } }], { maxAttempts: 1 });
    expect(sent?.outcome).toMatchObject({ status: 'sent' });
    expect(server.binds).toEqual([expect.objectContaining({ systemId: SYSTEM_ID, status: 0, encrypted: true })]);
    expect(server.countByText('over TLS')).toBe(1);
  });

  it.each([
    ['a self-signed certificate it was not told to trust', false],
    ['a trusted certificate that names another host', true],
  ])('refuses %s: the task fails and no bind (no password) is sent', async (_what, trustOtherName) => {
    const server = await smsc(trustOtherName ? otherName : local);
    const extra: RawConfig = trustOtherName ? { 'smpp.tls.ca': otherName.cert } : {};
    const error = await startSink(SmsSink, config(server, { 'smpp.tls': 'true', ...extra })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalConnectorError);
    expect(error).toMatchObject({ code: SmsErrorCode.TLS_UNVERIFIED, message: expect.stringContaining('smpp.tls.ca') });
    expect((error as Error).message).not.toContain(PASSWORD);
    expect(server.binds).toEqual([]);
  });

  it('accepts an unverified certificate only when smpp.tls.reject.unauthorized=false', async () => {
    const server = await smsc(local);
    const sink = await start(config(server, { 'smpp.tls': 'true', 'smpp.tls.reject.unauthorized': 'false' }));
    const [sent] = await sink.send([{ key: '+33612345678', value: { to: '+33612345678', text: 'unverified' } }], { maxAttempts: 1 });
    expect(sent?.outcome).toMatchObject({ status: 'sent' });
    expect(server.binds.every((b) => b.encrypted)).toBe(true);
  });

  it('never falls back to clear text: against a plain SMSC, a TLS client sends no bind', async () => {
    const server = await smsc();
    const sink = await start(config(server, { 'smpp.tls': 'true', 'smpp.tls.ca': local.cert }));
    const [result] = await sink.send([{ key: '+33612345678', value: { to: '+33612345678', text: 'x' } }], { maxAttempts: 1 });
    expect(result?.outcome.status).not.toBe('sent');
    expect(server.binds).toEqual([]);
  });

  it('refuses smpp.tls.ca that is not PEM text', () => {
    const infos = SmsSink.config.validate('SmsSink', { ...config({ host: '127.0.0.1', port: 1 } as SmscDevServer), 'smpp.tls.ca': '/etc/ssl/ca.pem' });
    expect(infos.configs.find((c) => c.value.name === 'smpp.tls.ca')?.value.errors).toEqual([expect.stringContaining('BEGIN CERTIFICATE')]);
  });
});
