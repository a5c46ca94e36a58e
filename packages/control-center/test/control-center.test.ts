/**
 * The control center in a real browser: Debian's Chromium (apt-get install -y chromium), driven
 * by playwright-core, against a real worker process on LMDB with basic auth. It signs in, creates
 * a FileSink through the form generated from the plugin's config spec (seeing a validation error
 * on the right field first), sees it RUNNING, pauses and resumes it, finds a produced message by
 * id with its delivery, watches a group reach its total, browses a dead letter and
 * re-sends it, finds a key's messages, sees a paused connector's backlog on the Topics page,
 * and checks that a stored secret never reaches the page.
 *
 * Every run writes a screenshot of each page to screenshots/ (or OMNIBUS_UI_SCREENSHOTS=<dir>),
 * named after the page: the README shows two of them (docs/).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, WorkerProcess } from '@omnibus/test-support';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
const USER = 'oncall';
const PASSWORD = 'correct-horse-battery';
const SMTP_SECRET = 'smtp-secret-never-shown-7731';
const AUTH = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };
/** The UI polls statuses every 2–3 s; a loaded 2-core machine may take several rounds. */
const SEEN = { timeout: 45_000 };

function newestSource(directory: string): number {
  return Math.max(
    ...readdirSync(directory, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => statSync(join(entry.parentPath, entry.name)).mtimeMs),
  );
}

/** Builds the UI when dist/ is missing or older than its sources (the worker reads dist/ at start). */
function ensureBuilt(): void {
  const index = join(PACKAGE, 'dist', 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newestSource(join(PACKAGE, 'app'))) return;
  // vitest sets NODE_ENV=test, under which Vite would bundle Preact's development build.
  execFileSync('pnpm', ['run', 'build'], { cwd: PACKAGE, stdio: 'pipe', timeout: 170_000, env: { ...process.env, NODE_ENV: 'production' } });
}

const SCREENSHOTS = process.env.OMNIBUS_UI_SCREENSHOTS || join(PACKAGE, 'screenshots');
/** The pages every run must have photographed. */
const PAGES = ['cluster', 'connectors', 'connector-form', 'connector', 'failed-connector', 'message', 'message-by-key', 'group', 'dead-letters', 'topics', 'cluster-dark', 'live', 'phone-connectors', 'phone-topics'];

describe('the control center in Chromium', () => {
  let worker: WorkerProcess;
  let browser: Browser;
  let page: Page;
  let dir: string;
  let messageId: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${worker.url}${path}`, {
      method,
      headers: { ...AUTH, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: the control center's browser test needs Debian's Chromium. Install it with: apt-get install -y chromium`);
    }
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'omnibus-ui-'));
    worker = await WorkerProcess.start({
      store: `lmdb:${join(dir, 'store')}`,
      name: 'ui-worker',
      env: { OMNIBUS_REST_AUTH_BASIC_USERS: `${USER}:${PASSWORD}` },
    });
    expect((await api('POST', '/topics', { name: 'orders', shards: 4 })).status).toBe(201);
    // EmailSink's value schema applies to the topics it reads: its connectors get topics of their own.
    expect((await api('POST', '/topics', { name: 'mail-out', shards: 2 })).status).toBe(201);
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const name of PAGES) rmSync(join(SCREENSHOTS, `${name}.png`), { force: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // A cold build and a cold worker start on a loaded machine, one after the other.
  }, 360_000);

  const screenshot = async (name: string) => {
    if (!PAGES.includes(name)) throw new Error(`screenshot ${name} is not in PAGES`);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  };

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the shell without credentials, and the API still asks for them', async () => {
    const shell = await fetch(`${worker.url}/ui/connectors`);
    expect(shell.status).toBe(200);
    expect(shell.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await shell.text()).toContain('<div id="app">');
    expect((await fetch(`${worker.url}/connectors`)).status).toBe(401);
  });

  it('signs in with basic auth after refusing a wrong password', async () => {
    await page.goto(`${worker.url}/ui/`);
    const form = page.getByRole('form', { name: 'Sign in' });
    await form.getByLabel('User').fill(USER);
    await form.getByLabel('Password').fill('wrong');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => form.getByRole('alert').textContent(), SEEN).toContain('did not accept');
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Cluster' }).waitFor(SEEN);
    // The worker itself, from GET /workers, with its heartbeat.
    await expect.poll(() => page.locator(`tr[data-worker="${worker.id}"]`).textContent(), SEEN).toMatch(/\d+s ago/);
    await screenshot('cluster');
    await page.getByRole('navigation').getByRole('link', { name: 'Connectors' }).click();
    await page.getByRole('heading', { name: 'Connectors' }).waitFor(SEEN);
    await page.getByText('No connectors.').waitFor(SEEN);
  });

  it('creates a FileSink through the generated form, showing a field error first', async () => {
    await page.getByRole('link', { name: 'New connector' }).click();
    await page.getByRole('link', { name: 'FileSink' }).click();
    await page.getByRole('heading', { name: 'New FileSink' }).waitFor(SEEN);
    const field = (name: string) => page.locator(`[data-field="${name}"]`);
    // Groups and documentation come from the spec.
    await expect.poll(() => page.locator('legend').allTextContents(), SEEN).toEqual(expect.arrayContaining(['FileSink', 'Common', 'Error Handling']));
    expect(await field('file').textContent()).toContain('Path of the file');
    await field('name').locator('input').fill('orders-file');
    await field('topics').locator('input').fill('orders');
    await field('file').locator('input').fill(join(dir, 'out', 'orders.jsonl'));
    await field('tasks.max').locator('input').fill('two');
    await expect.poll(() => field('tasks.max').locator('.field-error').textContent(), SEEN).toContain('Expected an integer');
    await screenshot('connector-form');
    expect(await field('tasks.max').locator('input').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.field-error').count()).toBe(1);
    await field('tasks.max').locator('input').fill('2');
    await expect.poll(() => field('tasks.max').locator('.field-error').count(), SEEN).toBe(0);
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'orders-file' }).waitFor(SEEN);
    await expect.poll(() => page.locator('h1 + .state').textContent(), SEEN).toBe('RUNNING');
    await expect.poll(() => page.locator('tbody .state').allTextContents(), SEEN).toEqual(['RUNNING', 'RUNNING']);
    await screenshot('connector');
    const created = (await api('GET', '/connectors/orders-file/config')).body as Record<string, string>;
    expect(created).toMatchObject({ 'connector.class': 'FileSink', topics: 'orders', 'tasks.max': '2' });
  });

  it('pauses and resumes the connector', async () => {
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => page.locator('h1 + .state').textContent(), SEEN).toBe('PAUSED');
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => page.locator('h1 + .state').textContent(), SEEN).toBe('RUNNING');
  });

  it("shows a failed task's trace, and deletes a connector after confirmation", async () => {
    // Its directory would have to be made inside a regular file: the task fails at start, whoever runs the test.
    writeFileSync(join(dir, 'not-a-directory'), '');
    const config = { 'connector.class': 'FileSink', topics: 'orders', file: join(dir, 'not-a-directory', 'out.jsonl') };
    expect((await api('POST', '/connectors', { name: 'broken-file', config })).status).toBe(201);
    await page.goto(`${worker.url}/ui/connectors/broken-file`);
    const trace = page.getByLabel('Trace of task 0');
    await trace.waitFor(SEEN);
    // The trace says why and never names the path (a REST caller must not learn which files exist).
    expect(await trace.textContent()).toMatch(/Error: .*could not be opened.*\(E[A-Z]+\)/);
    expect(await page.locator('tbody .state').first().textContent()).toBe('FAILED');
    await screenshot('failed-connector');
    await page.getByRole('button', { name: 'Delete' }).click();
    // Nothing happens before the confirmation.
    expect((await api('GET', '/connectors/broken-file')).status).toBe(200);
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await page.getByRole('heading', { name: 'Connectors' }).waitFor(SEEN);
    expect((await api('GET', '/connectors/broken-file')).status).toBe(404);
    await page.locator('tr[data-connector="orders-file"]').waitFor(SEEN);
    await screenshot('connectors');
  });

  it('finds a produced message by id, with its delivery and timeline', async () => {
    const produced = await api('POST', '/topics/orders/messages', { messages: [{ key: 'customer-42', value: { order: 42, item: 'tea' } }] });
    expect(produced.status).toBe(202);
    messageId = (produced.body as { messages: Array<{ id: string }> }).messages[0]!.id;
    await page.getByRole('navigation').getByRole('link', { name: 'Message' }).click();
    await page.getByLabel('Message id').fill(messageId);
    await page.getByRole('button', { name: 'Look up' }).click();
    const delivery = page.locator('table.deliveries tr[data-connector="orders-file"]');
    await expect.poll(() => delivery.locator('.state').textContent(), SEEN).toBe('sent');
    expect(await delivery.locator('td').nth(2).textContent()).toBe('1');
    expect(await page.locator('pre.value').textContent()).toContain('"item": "tea"');
    await page.getByRole('heading', { name: 'Timeline' }).waitFor(SEEN);
    expect(page.url()).toBe(`${worker.url}/ui/messages/${messageId}`);
    await screenshot('message');
  });

  it('finds the messages of a key on a topic, and opens one', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Message' }).click();
    const form = page.getByRole('search', { name: 'By key' });
    await form.getByLabel('Topic').selectOption('orders');
    await form.getByLabel('Key').fill('customer-42');
    await form.getByRole('button', { name: 'Find by key' }).click();
    const row = page.locator(`tr[data-message="${messageId}"]`);
    await row.waitFor(SEEN);
    expect(await row.textContent()).toContain('"item":"tea"');
    expect(await page.locator('table.key-messages tbody tr').count()).toBe(1);
    // The shard the key routes to, as GET /topics/{t}/route says.
    const route = (await api('GET', '/topics/orders/route?key=customer-42')).body as { shard: number };
    await expect.poll(() => page.getByText(/^Shard \d+ \(token/).textContent(), SEEN).toContain(`Shard ${route.shard} `);
    await screenshot('message-by-key');
    await row.getByRole('link').click();
    await page.waitForURL(`${worker.url}/ui/messages/${messageId}`, SEEN);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor(SEEN);
  });

  it("watches a group's counts reach its total", async () => {
    const messages = Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: { i } }));
    expect((await api('POST', '/topics/orders/messages', { group: 'campaign-7', messages })).status).toBe(202);
    await page.goto(`${worker.url}/ui/groups/campaign-7`);
    await expect.poll(() => page.getByTestId('group-total').textContent(), SEEN).toBe('5');
    await expect.poll(() => page.locator('tr[data-connector="orders-file"] [data-state="sent"]').textContent(), SEEN).toBe('5');
    await screenshot('group');
  });

  it('never shows a stored secret', async () => {
    const config = {
      'connector.class': 'EmailSink',
      topics: 'mail-out',
      'smtp.host': '127.0.0.1',
      'smtp.user': 'mailer',
      'smtp.password': SMTP_SECRET,
      'email.from': 'ops@example.com',
    };
    expect((await api('POST', '/connectors', { name: 'mail', config, initial_state: 'PAUSED' })).status).toBe(201);
    await page.goto(`${worker.url}/ui/connectors/mail/edit`);
    const password = page.locator('[data-field="smtp.password"] input');
    await password.waitFor(SEEN);
    expect(await password.getAttribute('type')).toBe('password');
    expect(await password.inputValue()).toBe('');
    expect(await password.getAttribute('placeholder')).toContain('not shown');
    expect(await page.content()).not.toContain(SMTP_SECRET);
    // Saving without touching it keeps the stored secret (the form sends back "[hidden]").
    await page.locator('[data-field="smtp.user"] input').fill('mailer2');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'mail', exact: true }).waitFor(SEEN);
    expect(await page.content()).not.toContain(SMTP_SECRET);
    const stored = (await api('GET', '/connectors/mail/config')).body as Record<string, string>;
    expect(stored).toMatchObject({ 'smtp.user': 'mailer2', 'smtp.password': '[hidden]' });
  });

  it('browses a dead letter with its error headers and re-sends it to its topic under a new id', async () => {
    const config = {
      'connector.class': 'EmailSink',
      topics: 'mail-out',
      // Nothing listens there: every send is refused, and with one attempt allowed it is dead-lettered at once.
      'smtp.host': '127.0.0.1',
      'smtp.port': String(await freePort()),
      'email.from': 'ops@example.com',
      'errors.retry.max.attempts': '1',
      'errors.deadletterqueue.topic.name': 'mail-dlq',
    };
    expect((await api('POST', '/connectors', { name: 'mailer', config })).status).toBe(201);
    const produced = await api('POST', '/topics/mail-out/messages', { messages: [{ key: 'customer-9', value: { to: 'a@example.com', subject: 'Your order', text: 'On its way.' } }] });
    const original = (produced.body as { messages: Array<{ id: string }> }).messages[0]!.id;
    const letters = async () => {
      const answer = await api('GET', '/topics/mail-dlq/messages');
      return answer.status === 200 ? (answer.body as { messages: Array<{ id: string; headers: Record<string, string> }> }).messages : [];
    };
    await expect.poll(async () => (await letters()).length, SEEN).toBe(1);
    const [letter] = await letters();
    expect(letter!.headers['omnibus.errors.message.id']).toBe(original);

    await page.getByRole('navigation').getByRole('link', { name: 'Dead letters' }).click();
    const row = page.locator(`tr[data-letter="${letter!.id}"]`);
    await row.waitFor(SEEN);
    expect(await row.textContent()).toContain(original);
    expect(await row.textContent()).toContain(letter!.headers['omnibus.errors.code']!);
    await screenshot('dead-letters');
    await row.getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Re-send 1' }).click();
    await page.getByRole('button', { name: 'Yes, re-send 1' }).click();
    const link = page.getByRole('list', { name: 'Re-sent' }).getByRole('link');
    await link.waitFor(SEEN);
    const resentId = (await link.textContent())!;
    expect(resentId).not.toBe(letter!.id);
    const resent = (await api('GET', `/messages/${resentId}`)).body as { message: { topic: string; value: unknown; headers: Record<string, string> } };
    expect(resent.message).toMatchObject({
      topic: 'mail-out',
      value: { to: 'a@example.com', subject: 'Your order' },
      headers: { 'omnibus.resent.from': letter!.id, 'omnibus.resent.original.id': original },
    });
    expect(Object.keys(resent.message.headers).filter((h) => h.startsWith('omnibus.errors.'))).toEqual([]);
  });

  it("shows topics with their shards, retention and readers, and a paused connector's backlog per shard", async () => {
    expect((await api('PUT', '/connectors/orders-file/pause')).status).toBe(202);
    await expect.poll(async () => ((await api('GET', '/connectors/orders-file/status')).body as { tasks: Array<{ state: string }> }).tasks.map((t) => t.state), SEEN).toEqual(['PAUSED', 'PAUSED']);
    const waiting = Array.from({ length: 3 }, (_, i) => ({ key: `waiting-${i}`, value: { i } }));
    expect((await api('POST', '/topics/orders/messages', { messages: waiting })).status).toBe(202);
    await page.getByRole('navigation').getByRole('link', { name: 'Topics' }).click();
    const orders = page.locator('article[data-topic="orders"]');
    await orders.waitFor(SEEN);
    expect(await orders.locator('dd').first().textContent()).toBe('4');
    await expect.poll(() => orders.textContent(), SEEN).toContain('orders-file');
    const backlog = orders.locator('tr[data-connector="orders-file"]');
    await expect.poll(() => backlog.getByTestId('waiting').textContent(), SEEN).toBe('3');
    expect(await backlog.locator('[data-shard]').count()).toBe(4);
    await screenshot('topics');
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await screenshot('phone-topics');
    await page.setViewportSize({ width: 1280, height: 800 });
    expect((await api('PUT', '/connectors/orders-file/resume')).status).toBe(202);
    await expect.poll(() => backlog.getByTestId('waiting').textContent(), SEEN).toBe('0');
  });

  it('switches to the dark theme', async () => {
    await page.getByLabel('Theme').selectOption('dark');
    await expect.poll(() => page.locator('html').getAttribute('data-theme'), SEEN).toBe('dark');
    await page.goto(`${worker.url}/ui/`);
    // Kept across reloads.
    await expect.poll(() => page.locator('html').getAttribute('data-theme'), SEEN).toBe('dark');
    await page.getByRole('heading', { name: 'Cluster' }).waitFor(SEEN);
    await screenshot('cluster-dark');
  });

  it('draws live charts from /metrics', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Live' }).click();
    const produced = page.getByRole('figure').filter({ hasText: 'Produced, by topic' });
    // Two readings of /metrics make a line.
    await expect.poll(() => produced.locator('polyline').count(), SEEN).toBeGreaterThan(0);
    // Messages handed over while the page reads /metrics draw the hand-off latency.
    const handoff = page.getByRole('figure').filter({ hasText: 'Hand-off latency' });
    await expect
      .poll(async () => {
        await api('POST', '/topics/orders/messages', { messages: [{ key: 'live', value: { at: Date.now() } }] });
        return handoff.locator('polyline').count();
      }, SEEN)
      .toBeGreaterThan(0);
    await screenshot('live');
  });

  it('is usable from the keyboard alone', async () => {
    await page.goto(`${worker.url}/ui/`);
    await page.getByRole('heading', { name: 'Cluster' }).waitFor(SEEN);
    const focused = () => page.evaluate<string>("document.activeElement?.textContent?.trim() ?? ''");
    // The first stop skips the navigation; Enter puts the focus on the page's content.
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement?.id')).toBe('main');
    // Every page is a link in the navigation: Tab to one, Enter opens it.
    await page.keyboard.press('Shift+Tab');
    for (let i = 0; i < 10 && (await focused()) !== 'Message'; i++) await page.keyboard.press('Tab');
    expect(await focused()).toBe('Message');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Message' }).waitFor(SEEN);
    // The focus moves to the page's content once the page has rendered (an effect, run after the
    // heading may already show): the next stop is the id field; type, Enter, and the message is there.
    await expect.poll(() => page.evaluate('document.activeElement?.id'), SEEN).toBe('main');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.name')).toBe('id');
    await page.keyboard.type(messageId);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Timeline' }).waitFor(SEEN);
  });

  it("shows a sink connector's backlog on its page", async () => {
    await page.goto(`${worker.url}/ui/connectors/orders-file`);
    await expect.poll(() => page.getByTestId('backlog').textContent(), SEEN).toMatch(/^0 waiting/);
  });

  it('fits a phone-width screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('navigation').getByRole('link', { name: 'Connectors' }).click();
    await page.locator('tr[data-connector="orders-file"]').waitFor(SEEN);
    // Wide tables scroll inside themselves; the page itself never scrolls sideways.
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await screenshot('phone-connectors');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('photographed every page', () => {
    for (const name of PAGES) expect(statSync(join(SCREENSHOTS, `${name}.png`)).size, name).toBeGreaterThan(1000);
  });

  it('wrote the delivered message to the FileSink file', () => {
    const lines = readFileSync(join(dir, 'out', 'orders.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as { id: string }).id)).toContain(messageId);
  });
});
