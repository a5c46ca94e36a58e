// /templates (rest/templates.ts) and produces that name a template (rest/data-plane.ts), on LMDB, checked against the document.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectDocumented } from './openapi-check.ts';
import { startTestWorker, type TestWorker } from './harness.ts';

let worker: TestWorker;

beforeAll(async () => {
  worker = await startTestWorker();
});
afterAll(async () => {
  await worker?.close();
});

type Body = Record<string, unknown>;

async function call(method: string, url: string, payload?: object) {
  const response = await worker.app.inject({ method: method as 'GET', url, ...(payload ? { payload } : {}) });
  expectDocumented(method, url, { statusCode: response.statusCode, body: response.body, headers: response.headers });
  return { status: response.statusCode, body: (response.body ? response.json() : undefined) as Body };
}

const welcome = {
  channel: 'email',
  default_locale: 'en',
  locales: {
    en: { subject: 'Welcome, {{ user.name }}', html: '<p>Hello {{ user.name }}</p>', text: 'Hello {{ user.name }}' },
    fr: { subject: 'Bienvenue, {{ user.name }}', html: '<p>Bonjour {{ user.name }}</p>', text: 'Bonjour {{ user.name }}' },
  },
};

async function produce(topic: string, messages: object[]) {
  return call('POST', `/topics/${topic}/messages`, { messages });
}

async function topicMessages(topic: string) {
  return ((await call('GET', `/topics/${topic}/messages`)).body.messages as Body[]) ?? [];
}

describe('templates through REST', () => {
  it('creates, lists, reads and deletes a template', async () => {
    const created = await call('POST', '/templates', { name: 'welcome', ...welcome });
    expect(created.status).toBe(201);
    expect(created.body.template).toMatchObject({ name: 'welcome', live_version: 1, latest_version: 1 });
    expect(created.body.version).toMatchObject({ version: 1, channel: 'email', default_locale: 'en', locales: welcome.locales });
    expect((await call('POST', '/templates', { name: 'welcome', ...welcome })).status).toBe(409);

    expect((await call('GET', '/templates')).body).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'welcome', live_version: 1 })]));
    const got = await call('GET', '/templates/welcome');
    expect(got.body).toMatchObject({ name: 'welcome', live: { version: 1, locales: welcome.locales } });
    expect((await call('GET', '/templates/welcome/versions/1')).body).toMatchObject({ version: 1 });
    expect((await call('GET', '/templates/welcome/versions/2')).status).toBe(404);
    expect((await call('GET', '/templates/welcome/versions/zero')).status).toBe(400);

    expect((await call('POST', '/templates', { name: 'doomed', ...welcome })).status).toBe(201);
    expect((await call('DELETE', '/templates/doomed')).status).toBe(204);
    expect((await call('GET', '/templates/doomed')).status).toBe(404);
    expect((await call('DELETE', '/templates/doomed')).status).toBe(404);
    expect((await call('GET', '/templates/doomed/versions')).status).toBe(404);
  });

  it('PUT creates the template, then adds live versions; POST …/versions adds one that is live only when asked', async () => {
    const first = await call('PUT', '/templates/put-made', welcome);
    expect(first.status).toBe(201);
    const second = await call('PUT', '/templates/put-made', { ...welcome, locales: { en: { subject: 'v2', text: 'v2' } } });
    expect(second.status).toBe(200);
    expect(second.body.template).toMatchObject({ live_version: 2, latest_version: 2 });
    const third = await call('POST', '/templates/put-made/versions', { ...welcome, locales: { en: { subject: 'v3', text: 'v3' } } });
    expect(third.status).toBe(201);
    expect(third.body.template).toMatchObject({ live_version: 2, latest_version: 3 });
    const fourth = await call('POST', '/templates/put-made/versions', { ...welcome, live: true });
    expect(fourth.body.template).toMatchObject({ live_version: 4, latest_version: 4 });
    expect(((await call('GET', '/templates/put-made/versions')).body as unknown as Body[]).map((v) => v.version)).toEqual([1, 2, 3, 4]);
    expect((await call('PUT', '/templates/put-made/live', { version: 3 })).body).toMatchObject({ live_version: 3 });
    expect((await call('PUT', '/templates/put-made/live', { version: 9 })).status).toBe(404);
    expect((await call('PUT', '/templates/put-made/live', { version: 'latest' })).status).toBe(400);
    expect((await call('POST', '/templates/nobody/versions', welcome)).status).toBe(404);
  });

  it('refuses bad templates with 400 naming the key, and stores nothing', async () => {
    const cases: Array<[object, string]> = [
      [{ name: 'bad', ...welcome, locales: { en: { ...welcome.locales.en, html: '<p>{% if %}</p>' } } }, 'locales.en.html'],
      [{ name: 'bad', ...welcome, locales: { en: { subject: '{{ a | no_such_filter }}', text: 'x' } } }, 'locales.en.subject'],
      [{ name: 'bad', ...welcome, locales: { en: { subject: 'x', text: '{% include "package.json" %}' } } }, 'locales.en.text'],
      [{ name: 'bad', ...welcome, locales: { en: { subject: 'x', body: 'y' } } }, 'locales.en.body'],
      [{ name: 'bad', ...welcome, locales: { en: { subject: 'x' } } }, 'locales.en.html|text'],
      [{ name: 'bad', ...welcome, default_locale: 'de' }, 'default_locale'],
      [{ name: 'bad', ...welcome, channel: 'pigeon' }, 'channel'],
      [{ name: 'bad', ...welcome, locales: { 'not a locale': { subject: 'x', text: 'y' } } }, 'locales.not a locale'],
      [{ name: 'bad/name', ...welcome }, 'name'],
    ];
    for (const [body, key] of cases) {
      const { status, body: error } = await call('POST', '/templates', body);
      expect(status, key).toBe(400);
      expect(error.message, key).toContain(`Invalid value for ${key}:`);
    }
    expect((await call('GET', '/templates/bad')).status).toBe(404);
    expect((await call('PUT', '/templates/bad', { ...welcome, channel: 'pigeon' })).status).toBe(400);
    expect((await call('GET', '/templates/bad')).status).toBe(404);
  });
});

describe('preview', () => {
  beforeAll(async () => {
    await call('POST', '/templates', { name: 'preview-me', ...welcome });
  });

  it('renders each locale, falling back to the language and then to the default locale', async () => {
    const variables = { user: { name: 'Ada' } };
    const fr = await call('POST', '/templates/preview-me/preview', { variables, locale: 'fr' });
    expect(fr.body).toEqual({
      name: 'preview-me',
      version: 1,
      locale: 'fr',
      parts: { subject: 'Bienvenue, Ada', html: '<p>Bonjour Ada</p>', text: 'Bonjour Ada' },
    });
    expect((await call('POST', '/templates/preview-me/preview', { variables, locale: 'fr-CA' })).body.locale).toBe('fr');
    expect((await call('POST', '/templates/preview-me/preview', { variables, locale: 'FR_be' })).body.locale).toBe('fr');
    expect((await call('POST', '/templates/preview-me/preview', { variables, locale: 'de' })).body).toMatchObject({ locale: 'en', parts: { subject: 'Welcome, Ada' } });
    expect((await call('POST', '/templates/preview-me/preview', { variables })).body.locale).toBe('en');
  });

  it('escapes variables in the html part only', async () => {
    const { body } = await call('POST', '/templates/preview-me/preview', { variables: { user: { name: '<script>alert("x")</script> & co' } } });
    const parts = body.parts as Record<string, string>;
    expect(parts.html).toBe('<p>Hello &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co</p>');
    expect(parts.text).toBe('Hello <script>alert("x")</script> & co');
    expect(parts.subject).toBe('Welcome, <script>alert("x")</script> & co');
  });

  it('refuses a missing variable naming it, never rendering an empty string', async () => {
    const missing = await call('POST', '/templates/preview-me/preview', { variables: { user: {} } });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toBe('Template preview-me version 1 (en) needs variable user.name, which variables does not give');
    expect((await call('POST', '/templates/preview-me/preview', { variables: [] })).status).toBe(400);
    expect((await call('POST', '/templates/nothing-here/preview', { variables: {} })).status).toBe(404);
    expect((await call('POST', '/templates/preview-me/preview', { variables: {}, version: 7 })).status).toBe(404);
  });

  it('bounds what a render may do: a huge loop fails with 400, nothing is read from files', async () => {
    await call('POST', '/templates', { name: 'loop', channel: 'sms', locales: { en: { text: '{% for i in (1..n) %}{{ i }}{% endfor %}' } } });
    expect((await call('POST', '/templates/loop/preview', { variables: { n: 3 } })).body.parts).toEqual({ text: '123' });
    const huge = await call('POST', '/templates/loop/preview', { variables: { n: 100_000_000 } });
    expect(huge.status).toBe(400);
    expect(huge.body.message).toMatch(/^Template loop version 1 \(en\) failed to render text: .*limit/);
  });

  it('reports the alphabet and segments of SMS templates when created and when rendered', async () => {
    const created = await call('POST', '/templates', {
      name: 'otp',
      channel: 'sms',
      default_locale: 'en',
      locales: { en: { text: 'Your code is {{ code }}' }, ru: { text: 'Ваш код {{ code }}' } },
    });
    expect(created.status).toBe(201);
    expect(created.body.sms).toEqual({ en: { encoding: 'GSM7', segments: 1, units: 13 }, ru: { encoding: 'UCS2', segments: 1, units: 8 } });
    const long = await call('POST', '/templates/otp/preview', { variables: { code: 'x'.repeat(150) } });
    expect(long.body).toMatchObject({ parts: { text: `Your code is ${'x'.repeat(150)}` }, sms: { encoding: 'GSM7', segments: 2, units: 163 } });
    const unicode = await call('POST', '/templates/otp/preview', { variables: { code: '😀' } });
    expect(unicode.body.sms).toEqual({ encoding: 'UCS2', segments: 1, units: 15 });
  });
});

describe('produce naming a template', () => {
  beforeAll(async () => {
    expect((await call('POST', '/topics', { name: 'mail', shards: 2 })).status).toBe(201);
    expect((await call('POST', '/templates', { name: 'receipt', ...welcome })).status).toBe(201);
  });

  const templated = (name: string, variables: object, extra: object = {}) => ({
    key: 'ada@example.com',
    value: { to: 'ada@example.com', template: { name: 'receipt', variables, ...extra } },
    ...(name ? { headers: { trace: name } } : {}),
  });

  it('stores the rendered message with the template, version and locale it used, shown by GET /messages/{id}', async () => {
    const produced = await produce('mail', [templated('t1', { user: { name: 'Ada' } }, { locale: 'fr-CA' })]);
    expect(produced.status).toBe(202);
    const id = (produced.body.messages as Body[])[0]!.id as string;
    const trace = await call('GET', `/messages/${id}`);
    expect(trace.body.template).toEqual({ name: 'receipt', version: 1, locale: 'fr' });
    expect((trace.body.message as Body).value).toEqual({ to: 'ada@example.com', subject: 'Bienvenue, Ada', html: '<p>Bonjour Ada</p>', text: 'Bonjour Ada' });
    expect((trace.body.message as Body).headers).toEqual({
      trace: 't1',
      'omnibus.template.name': 'receipt',
      'omnibus.template.version': '1',
      'omnibus.template.locale': 'fr',
    });
  });

  it('refuses the whole produce when one message misses a variable or names an unknown template', async () => {
    const before = (await topicMessages('mail')).length;
    const missing = await produce('mail', [templated('ok', { user: { name: 'Ada' } }), templated('bad', { user: { nom: 'Ada' } })]);
    expect(missing.status).toBe(400);
    expect(missing.body.message).toContain('needs variable user.name, which messages[1].value.template.variables does not give');
    const unknown = await produce('mail', [{ key: 'k', value: { to: 'x@example.com', template: { name: 'no-such', variables: {} } } }]);
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toBe('Template no-such not found');
    const pinnedMissing = await produce('mail', [templated('', { user: { name: 'A' } }, { version: 5 })]);
    expect(pinnedMissing.status).toBe(404);
    const badReference = await produce('mail', [{ key: 'k', value: { template: 'receipt' } }]);
    expect(badReference.status).toBe(400);
    expect(badReference.body.message).toContain('messages[0].value.template');
    expect(await topicMessages('mail')).toHaveLength(before);
  });

  it('keeps each message at the version it was produced with while the live version moves', async () => {
    const idOf = async (extra: object = {}) => ((await produce('mail', [templated('', { user: { name: 'Bo' } }, extra)])).body.messages as Body[])[0]!.id as string;
    const atV1 = await idOf();
    await call('POST', '/templates/receipt/versions', { ...welcome, locales: { en: { subject: 'v2 for {{ user.name }}', text: 'v2' } }, live: true });
    const atV2 = await idOf();
    const pinnedV1 = await idOf({ version: 1 });
    await call('PUT', '/templates/receipt/live', { version: 1 });
    const backAtV1 = await idOf();
    const view = async (id: string) => (await call('GET', `/messages/${id}`)).body;
    expect((await view(atV1)).template).toMatchObject({ version: 1 });
    expect(((await view(atV1)).message as Body).value).toMatchObject({ subject: 'Welcome, Bo' });
    expect((await view(atV2)).template).toMatchObject({ version: 2 });
    expect(((await view(atV2)).message as Body).value).toMatchObject({ subject: 'v2 for Bo', text: 'v2' });
    expect((await view(pinnedV1)).template).toMatchObject({ version: 1 });
    expect((await view(backAtV1)).template).toMatchObject({ version: 1 });
    // Deleting the template changes nothing of what was produced from it.
    await call('POST', '/templates', { name: 'gone-soon', ...welcome });
    const fromGone = ((await produce('mail', [{ key: 'k', value: { to: 'x@example.com', template: { name: 'gone-soon', variables: { user: { name: 'C' } } } } }])).body.messages as Body[])[0]!.id as string;
    await call('DELETE', '/templates/gone-soon');
    expect(((await view(fromGone)).message as Body).value).toMatchObject({ subject: 'Welcome, C' });
  });

  it("leaves WhatsApp's own template messages (type: template) as they are, and renders ours into a text message", async () => {
    await call('POST', '/topics', { name: 'wa', shards: 1 });
    const meta = { to: '15551234567', type: 'template', template: { name: 'hello_world', language: { code: 'en_US' } } };
    const produced = await produce('wa', [{ key: '15551234567', value: meta }]);
    const id = (produced.body.messages as Body[])[0]!.id as string;
    const trace = (await call('GET', `/messages/${id}`)).body;
    expect((trace.message as Body).value).toEqual(meta);
    expect(trace.template).toBeUndefined();

    await call('POST', '/templates', { name: 'wa-ship', channel: 'whatsapp', locales: { en: { text: 'Shipped: {{ order }}' } } });
    const ours = await produce('wa', [{ key: '15551234567', value: { to: '15551234567', template: { name: 'wa-ship', variables: { order: 'A-1' } } } }]);
    const oursId = (ours.body.messages as Body[])[0]!.id as string;
    expect(((await call('GET', `/messages/${oursId}`)).body.message as Body).value).toEqual({ to: '15551234567', type: 'text', text: { body: 'Shipped: A-1' } });
  });
});
