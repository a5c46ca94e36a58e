// An attacker with the REST port (any caller, through every write and validate route) never
// reads a resolved placeholder value or a stored secret back, and never gets a stored secret
// sent to an endpoint of their choosing.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSpec, type SinkConnector } from '@omnibus/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiscoveredPlugins } from '../../src/runtime/plugins.ts';
import { helloConfig, startTestWorker, testPlugins, type TestWorker } from '../rest/harness.ts';

/** Values only the worker host knows: none may ever appear in an answer or a log line. */
const ENV_NOT_A_NUMBER = 'env-Not-A-Number-7f3a';
const ENV_QUOTED = 'Q"uo\\te-env-91ab';
const ENV_TOKEN = 'env-Wa-Token-55e1';
const FILE_SECRET = 'file-Secret-Value-c0ffee';
const WORKER_PASSWORD = 'W0rker-Basic-Pass-42';
const LITERAL_PASSWORD = 'literal-Smtp-Pass-8d2c';
const LITERAL_TOKEN = 'literal-Wa-Token-1b7e';
const LITERAL_APP_SECRET = 'literal-Wa-App-Secret-3f90';
const LITERAL_TWILIO = 'literal-Twilio-Token-6a6a';
const ODD_PIN = 'odd-Pin-Value-7q7q';
const EVERY_SECRET = [ENV_NOT_A_NUMBER, ENV_QUOTED, ENV_TOKEN, FILE_SECRET, WORKER_PASSWORD, LITERAL_PASSWORD, LITERAL_TOKEN, LITERAL_APP_SECRET, LITERAL_TWILIO, ODD_PIN];

let worker: TestWorker;
let secretsDir: string;
let privateDir: string;
const answers: string[] = [];

/** A connector whose secret has a name no pattern would guess: only its spec says it is one. */
const oddSink: SinkConnector = {
  type: 'sink',
  className: 'OddSink',
  version: '1.0.0',
  config: ConfigSpec.builder().string('odd.target', { documentation: 'Where to.', optional: true }).password('odd.pin', { documentation: 'A PIN.', optional: true }),
  createTask: () => {
    throw new Error('OddSink runs no task in these tests');
  },
} as unknown as SinkConnector;

async function pluginsWithOddSink(): Promise<DiscoveredPlugins> {
  const base = await testPlugins();
  return {
    ...base,
    find: (name: string) => (name === 'OddSink' ? oddSink : base.find(name)),
    list: () => [...base.list(), { class: 'OddSink', type: 'sink', version: '1.0.0' }],
  } as DiscoveredPlugins;
}

beforeAll(async () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'omnibus-secrets-')));
  secretsDir = join(root, 'secrets');
  privateDir = join(root, 'private');
  mkdirSync(secretsDir);
  mkdirSync(privateDir);
  writeFileSync(join(secretsDir, 'app.properties'), `not.a.number=${FILE_SECRET}\ntoken=${FILE_SECRET}\n`);
  // The worker's own config, beside (not under) the allowed directory.
  writeFileSync(join(privateDir, 'worker.json'), JSON.stringify({ 'rest.auth.basic.users': `admin:${WORKER_PASSWORD}` }));
  worker = await startTestWorker({
    env: { NOT_A_NUMBER: ENV_NOT_A_NUMBER, QUOTED: ENV_QUOTED, WA_TOKEN: ENV_TOKEN, GUESSABLE: 'guessable' },
    fileAllowedPaths: [secretsDir],
    plugins: await pluginsWithOddSink(),
  });
});
afterAll(async () => {
  await worker?.close();
  rmSync(join(secretsDir, '..'), { recursive: true, force: true });
});

async function call(method: string, url: string, payload?: object) {
  const response = await worker.app.inject({ method: method as 'GET', url, ...(payload ? { payload } : {}) });
  answers.push(response.body);
  return { status: response.statusCode, text: response.body, body: response.body === '' ? undefined : (response.json() as Record<string, unknown>) };
}

function expectNoSecret(text: string): void {
  for (const secret of EVERY_SECRET) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(text).not.toContain(JSON.stringify(JSON.stringify(secret)).slice(1, -1));
  }
  expect(text).not.toMatch(/root:x?:?0:0|\/bin\/(ba)?sh/);
}

const errorsOf = (body: unknown, key: string): string[] =>
  ((body as { configs: Array<{ value: { name: string; errors: string[] } }> }).configs.find((c) => c.value.name === key)?.value.errors ?? []);

const emailConfig = (name: string, extra: Record<string, string> = {}) => ({
  name,
  'connector.class': 'EmailSink',
  topics: 'mail',
  'smtp.host': 'mail.example.org',
  'smtp.starttls': 'require',
  'email.from': 'noreply@example.org',
  'smtp.user': 'mailer',
  'smtp.password': LITERAL_PASSWORD,
  ...extra,
});

const whatsAppConfig = (name: string, extra: Record<string, string> = {}) => ({
  name,
  'connector.class': 'WhatsAppSink',
  topics: 'wa',
  'whatsapp.phone.number.id': '1234',
  'whatsapp.access.token': LITERAL_TOKEN,
  'whatsapp.app.secret': LITERAL_APP_SECRET,
  ...extra,
});

const twilioConfig = (name: string, extra: Record<string, string> = {}) => ({
  name,
  'connector.class': 'SmsSink',
  topics: 'sms',
  'sms.transport': 'twilio',
  'sms.from': '+33612345678',
  'twilio.account.sid': `AC${'0'.repeat(32)}`,
  'twilio.auth.token': LITERAL_TWILIO,
  ...extra,
});

const stored = async (name: string) => (await worker.store.getConnector(name))?.config;

describe('validate never echoes a resolved value', () => {
  it('names the key and the placeholder, never the value, for env and file placeholders', async () => {
    for (const placeholder of ['${env:NOT_A_NUMBER}', `\${file:${secretsDir}/app.properties:not.a.number}`]) {
      const answer = await call('PUT', '/connector-plugins/HelloSink/config/validate', helloConfig('v', { 'tasks.max': placeholder }));
      expect(answer.status).toBe(200);
      expectNoSecret(answer.text);
      const errors = errorsOf(answer.body, 'tasks.max');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain('tasks.max');
      expect(errors[0]).toContain(placeholder);
    }
  });

  it('hides the JSON-escaped form of a value too', async () => {
    const answer = await call('PUT', '/connector-plugins/HelloSink/config/validate', helloConfig('v', { 'tasks.max': '${env:QUOTED}', 'delivery.guarantee': '${env:QUOTED}' }));
    expectNoSecret(answer.text);
    expect(errorsOf(answer.body, 'tasks.max')[0]).toContain('${env:QUOTED}');
    expect(errorsOf(answer.body, 'delivery.guarantee')[0]).toContain('${env:QUOTED}');
  });

  it('answers a placeholder outside the allowed paths like one that does not exist: no error, no value', async () => {
    const attempts = {
      passwd: '${file:/etc/passwd:root}',
      worker: `\${file:${privateDir}/worker.json:rest.auth.basic.users}`,
      dotdot: `\${file:${secretsDir}/../private/worker.json:rest.auth.basic.users}`,
      missing: `\${file:${secretsDir}/absent.properties:token}`,
      noKey: `\${file:${secretsDir}/app.properties:absent}`,
      unsetEnv: '${env:NOT_SET_ANYWHERE}',
    };
    const shapes = new Set<string>();
    for (const placeholder of Object.values(attempts)) {
      const answer = await call('PUT', '/connector-plugins/HelloSink/config/validate', helloConfig('v', { 'tasks.max': placeholder }));
      expect(answer.status).toBe(200);
      expectNoSecret(answer.text);
      // Same answer for each, once the placeholder itself is taken out.
      shapes.add(answer.text.split(JSON.stringify(placeholder).slice(1, -1)).join('<p>'));
    }
    expect(shapes.size).toBe(1);
  });

  it('does not tell whether a literal value the caller wrote equals a resolved one', async () => {
    const shape = async (guess: string) => {
      const answer = await call('PUT', '/connector-plugins/HelloSink/config/validate', helloConfig('v', { 'tasks.max': '${env:GUESSABLE}', 'hello.greeting': guess }));
      expect((answer.body as { configs: Array<{ value: { name: string; value: string } }> }).configs.find((c) => c.value.name === 'hello.greeting')?.value.value).toBe(guess);
      return answer.text.split(guess).join('<guess>');
    };
    expect(await shape('guessable')).toBe(await shape('wrong-guess'));
  });

  it('takes a secret out of a cross-key message and keeps a placeholder in a key name as written', async () => {
    const answer = await call('PUT', '/connector-plugins/EmailSink/config/validate', {
      ...emailConfig('v'),
      'smtp.user': '',
      '${env:NOT_A_NUMBER}': '${env:WA_TOKEN}',
    });
    expect(answer.status).toBe(200);
    expectNoSecret(answer.text);
    expect(errorsOf(answer.body, 'smtp.user').join(' ')).toContain('smtp.user is required');
  });
});

describe('rejected writes name the key, never the value', () => {
  it('POST, PUT and PATCH', async () => {
    const posted = await call('POST', '/connectors', { name: 'bad', config: helloConfig('bad', { 'tasks.max': '${env:NOT_A_NUMBER}' }) });
    expect(posted.status).toBe(400);
    expect(posted.body?.message).toContain('tasks.max');
    expect(posted.body?.message).toContain('${env:NOT_A_NUMBER}');
    const put = await call('PUT', '/connectors/bad/config', helloConfig('bad', { 'delivery.guarantee': `\${file:${secretsDir}/app.properties:token}` }));
    expect(put.status).toBe(400);
    expect(put.body?.message).toContain('delivery.guarantee');
    expect((await call('PUT', '/connectors/good/config', helloConfig('good'))).status).toBe(201);
    const patched = await call('PATCH', '/connectors/good/config', { 'tasks.max': '${env:QUOTED}' });
    expect(patched.status).toBe(400);
    expect(patched.body?.message).toContain('tasks.max');
    for (const answer of [posted, put, patched]) expectNoSecret(answer.text);
  });

  it('a config without a class is printed with every secret hidden, by spec and by name', async () => {
    const answer = await call('POST', '/connectors', { name: 'classless', config: { topics: 't', 'odd.pin': ODD_PIN, 'smtp.password': LITERAL_PASSWORD } });
    expect(answer.status).toBe(400);
    expect(answer.body?.message).toContain('odd.pin=[hidden]');
    expect(answer.body?.message).toContain('smtp.password=[hidden]');
    expectNoSecret(answer.text);
  });
});

describe('switching the class does not hand the secrets over', () => {
  it('EmailSink to HelloSink: the PATCH reply, the next GET and the store have no password', async () => {
    expect((await call('POST', '/connectors', { name: 'switch', config: emailConfig('switch') })).status).toBe(201);
    const patched = await call('PATCH', '/connectors/switch/config', { 'connector.class': 'HelloSink' });
    expect(patched.status).toBe(200);
    expect((patched.body?.config as Record<string, string>)['smtp.password']).toBeUndefined();
    const read = await call('GET', '/connectors/switch/config');
    expect(read.body?.['smtp.password']).toBeUndefined();
    expect(await stored('switch')).not.toHaveProperty('smtp.password');
    // What is not secret stays, as a PATCH keeps what it does not name.
    expect(read.body?.['smtp.user']).toBe('mailer');
  });

  it('a PUT that switches the class cannot keep a secret as [hidden]', async () => {
    await call('POST', '/connectors', { name: 'switch-put', config: emailConfig('switch-put') });
    const answer = await call('PUT', '/connectors/switch-put/config', { ...emailConfig('switch-put'), 'connector.class': 'HelloSink', 'smtp.password': '[hidden]' });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error_code: 400, message: expect.stringContaining('Re-send the secret: smtp.password') });
    expect(answer.body?.message).toContain('connector.class');
    expect(await stored('switch-put')).toMatchObject({ 'connector.class': 'EmailSink', 'smtp.password': LITERAL_PASSWORD });
  });

  it('a secret only the old class declares stays hidden in the reply when it is sent again', async () => {
    expect((await call('POST', '/connectors', { name: 'odd', config: { 'connector.class': 'OddSink', topics: 't', 'odd.pin': ODD_PIN } })).status).toBe(201);
    expect((await call('GET', '/connectors/odd/config')).body?.['odd.pin']).toBe('[hidden]');
    const refused = await call('PATCH', '/connectors/odd/config', { 'connector.class': 'HelloSink', 'odd.pin': '[hidden]' });
    expect(refused.status).toBe(400);
    const resent = await call('PATCH', '/connectors/odd/config', { 'connector.class': 'HelloSink', 'odd.pin': ODD_PIN });
    expect(resent.status).toBe(200);
    expect((resent.body?.config as Record<string, string>)['odd.pin']).toBe('[hidden]');
  });
});

describe('a stored secret is never sent to another endpoint', () => {
  it('PATCH of whatsapp.api.url drops the stored token and app secret (the required token must be sent again)', async () => {
    expect((await call('POST', '/connectors', { name: 'wa', config: whatsAppConfig('wa') })).status).toBe(201);
    const moved = await call('PATCH', '/connectors/wa/config', { 'whatsapp.api.url': 'http://attacker.example' });
    expect(moved.status).toBe(400);
    expect(moved.body?.message).toContain('Missing required configuration "whatsapp.access.token"');
    expect(moved.body?.message).toContain('Stored secrets dropped because the connector now sends elsewhere');
    expect(await stored('wa')).toMatchObject({ 'whatsapp.access.token': LITERAL_TOKEN });
    expect(await stored('wa')).not.toHaveProperty('whatsapp.api.url');

    const hidden = await call('PATCH', '/connectors/wa/config', { 'whatsapp.api.url': 'http://attacker.example', 'whatsapp.access.token': '[hidden]' });
    expect(hidden.status).toBe(400);
    expect(hidden.body?.message).toContain('Re-send the secret: whatsapp.access.token');
    expect(hidden.body?.message).toContain('whatsapp.api.url');

    const resent = await call('PATCH', '/connectors/wa/config', { 'whatsapp.api.url': 'http://new-host.example', 'whatsapp.access.token': 'a-new-token' });
    expect(resent.status).toBe(200);
    const after = await stored('wa');
    expect(after).toMatchObject({ 'whatsapp.api.url': 'http://new-host.example', 'whatsapp.access.token': 'a-new-token' });
    // The app secret was not sent again: gone.
    expect(after).not.toHaveProperty('whatsapp.app.secret');
  });

  it('a placeholder secret is dropped too: the endpoint would receive what it resolves to', async () => {
    await call('POST', '/connectors', { name: 'wa-env', config: whatsAppConfig('wa-env', { 'whatsapp.access.token': '${env:WA_TOKEN}' }) });
    const moved = await call('PATCH', '/connectors/wa-env/config', { 'whatsapp.api.url': 'http://attacker.example', 'whatsapp.phone.number.id': '99' });
    expect(moved.status).toBe(400);
    expect(await stored('wa-env')).toMatchObject({ 'whatsapp.access.token': '${env:WA_TOKEN}' });
  });

  it('twilio.api.url and smtp.host, smtp.port and a TLS downgrade: [hidden] is refused; without it the secret is dropped', async () => {
    expect((await call('POST', '/connectors', { name: 'sms', config: twilioConfig('sms') })).status).toBe(201);
    const put = await call('PUT', '/connectors/sms/config', { ...twilioConfig('sms'), 'twilio.api.url': 'http://attacker.example', 'twilio.auth.token': '[hidden]' });
    expect(put.status).toBe(400);
    expect(put.body?.message).toContain('Re-send the secret: twilio.auth.token');
    const patched = await call('PATCH', '/connectors/sms/config', { 'twilio.api.url': 'http://attacker.example' });
    expect(patched.status).toBe(400);
    expect(patched.body?.message).toContain('twilio.auth.token');

    expect((await call('POST', '/connectors', { name: 'mail', config: emailConfig('mail') })).status).toBe(201);
    for (const change of [{ 'smtp.host': 'attacker.example' }, { 'smtp.port': '2525' }, { 'smtp.starttls': 'never' }, { 'smtp.tls.reject.unauthorized': 'false' }]) {
      const hidden = await call('PATCH', '/connectors/mail/config', { ...change, 'smtp.password': '[hidden]' });
      expect(hidden.status).toBe(400);
      expect(hidden.body?.message).toContain('Re-send the secret: smtp.password');
      const bare = await call('PATCH', '/connectors/mail/config', change);
      // smtp.user without smtp.password is invalid: refused, naming the key; nothing changes.
      expect(bare.status).toBe(400);
      expect(bare.body?.message).toContain('smtp.password');
    }
    // Dropping the user too is a valid config: the password is gone with it.
    const moved = await call('PATCH', '/connectors/mail/config', { 'smtp.host': 'other.example', 'smtp.user': null });
    expect(moved.status).toBe(200);
    expect(await stored('mail')).not.toHaveProperty('smtp.password');
    expect(await stored('sms')).toMatchObject({ 'twilio.auth.token': LITERAL_TWILIO });
  });

  it('keeps the [hidden] round trip when nothing endpoint-like changes', async () => {
    await call('POST', '/connectors', { name: 'round', config: whatsAppConfig('round') });
    const shown = (await call('GET', '/connectors/round/config')).body as Record<string, string>;
    expect(shown['whatsapp.access.token']).toBe('[hidden]');
    expect((await call('PUT', '/connectors/round/config', { ...shown, 'whatsapp.max.in.flight': '8' })).status).toBe(200);
    expect((await call('PATCH', '/connectors/round/config', { 'whatsapp.access.token': '[hidden]', 'whatsapp.max.in.flight': '9' })).status).toBe(200);
    expect(await stored('round')).toMatchObject({ 'whatsapp.access.token': LITERAL_TOKEN, 'whatsapp.app.secret': LITERAL_APP_SECRET, 'whatsapp.max.in.flight': '9' });
  });
});

describe('the herder itself (the CLI and every other caller)', () => {
  it('restores [hidden] from the read it writes over, and refuses it when the connector moves', async () => {
    await worker.herder.createConnector('direct', whatsAppConfig('direct'));
    const refused = await worker.herder
      .patchConnectorConfig('direct', { 'whatsapp.api.url': 'http://attacker.example', 'whatsapp.access.token': '[hidden]' })
      .catch((error: unknown) => error as Error);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toContain('Re-send the secret: whatsapp.access.token');
    await worker.herder.patchConnectorConfig('direct', { 'whatsapp.access.token': '[hidden]', 'whatsapp.max.in.flight': '3' });
    expect(await stored('direct')).toMatchObject({ 'whatsapp.access.token': LITERAL_TOKEN, 'whatsapp.max.in.flight': '3' });
    const created = await worker.herder.createConnector('direct-new', whatsAppConfig('direct-new', { 'whatsapp.access.token': '[hidden]' })).catch((error: unknown) => error as Error);
    expect((created as Error).message).toContain('send the secret itself');
  });
});

describe('the webhook caller', () => {
  it('gets a constant 503 that names no key, placeholder or file when a secret cannot be resolved', async () => {
    await call('POST', '/connectors', { name: 'hook', config: helloConfig('hook', { 'hello.webhook.secret': `\${file:${privateDir}/worker.json:rest.auth.basic.users}` }) });
    const response = await worker.app.inject({ method: 'POST', url: '/hooks/hook', payload: { messageId: 'm', state: 'read' } });
    answers.push(response.body);
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ error_code: 503, message: 'The webhook cannot take calls now; try again later' });
  });
});

describe('after every attack above', () => {
  it('no answer and no log line carries a secret or a resolved value', async () => {
    for (const text of answers) expectNoSecret(text);
    const log = await worker.logText();
    expect(log.split('\n').length).toBeGreaterThan(10);
    expectNoSecret(log);
  });
});
