/**
 * What a new user does, outside this repository: every publishable package (the control
 * center's built files included) packed with `pnpm pack`, the tarballs installed with plain
 * `npm install` into an empty directory (their third-party dependencies from the npm
 * registry), a plain-JavaScript connector written beside it with its own npm-installed copy of
 * @omnibus/sdk, the installed `omnibus start` run on LMDB with that connector on its plugin
 * path, driven through the REST API and serving the control center at /ui/, and the installed
 * `omnibus demo`.
 *
 * npm's own cache (~/.npm) is shared between runs, so only the first run downloads much.
 * The install size and the time from `omnibus start` to an answering /health are printed.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** Directory names under packages/ of everything published, dependencies first. */
const PUBLISHED = ['sdk', 'core', 'connector-email', 'connector-sms', 'connector-whatsapp', 'cdc-source', 'connector-webhook', 'omnibus'];
/** The control center: built files (Vite), not a library; a dependency of the omnibus package. */
const CONTROL_CENTER = 'control-center';
const PACKED = [...PUBLISHED.slice(0, -1), CONTROL_CENTER, 'omnibus'];
const SECRET = 'hunter2-audit-secret';
const INSTALL_TIMEOUT_MS = 480_000;

const scratch = mkdtempSync(join(tmpdir(), 'omnibus-install-'));
const tarballDir = join(scratch, 'tarballs');
const appDir = join(scratch, 'app');
const pluginsDir = join(scratch, 'plugins');
const connectorDir = join(pluginsDir, 'audit-connector');
const auditFile = join(scratch, 'audit.jsonl');
/** While this file is absent the connector throws FatalConnectorError on a message asking for it. */
const healedFile = join(scratch, 'healed');

/**
 * The environment of everything run here: the user's, without this workspace's own setting of
 * NODE_OPTIONS (its omnibus-source condition is for the workspace's TypeScript sources).
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  const options = (env.NODE_OPTIONS ?? '').replace(/--conditions=omnibus-source/g, '').trim();
  if (options === '') delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = options;
  return env;
}

function run(command: string, args: string[], cwd: string, timeout: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout, env: userEnv(), maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${error.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

const tarballOf = (name: string) => {
  const file = readdirSync(tarballDir).find((f) => f === `${name.replace('@', '').replace('/', '-')}-0.1.0.tgz`);
  if (!file) throw new Error(`no tarball for ${name} in ${readdirSync(tarballDir).join(', ')}`);
  return join(tarballDir, file);
};

/** A plain-JavaScript sink, as a third party writes it against its own copy of the SDK. */
const CONNECTOR_SOURCE = `
import { appendFileSync, existsSync } from 'node:fs';
import { ConfigSpec, FatalConnectorError, defineSinkConnector } from '@omnibus/sdk';

const config = ConfigSpec.builder()
  .string('audit.file', { documentation: 'File each delivered message is appended to, as a JSON line.' })
  .password('audit.password', { documentation: 'The audit service password.' })
  .string('audit.healed.file', { documentation: 'While this file is absent, a message with {"fatal": true} breaks the connector.' });

class AuditTask {
  async start(config) {
    this.config = config;
  }
  async put(records) {
    for (const record of records) {
      if (record.value && record.value.fatal === true && !existsSync(this.config['audit.healed.file'])) {
        throw new FatalConnectorError('OMNI_ERR_AUDIT_BROKEN', 'the audit service refuses this account');
      }
    }
    const password = this.config['audit.password'].value();
    for (const record of records) {
      appendFileSync(this.config['audit.file'], JSON.stringify({ id: record.id, value: record.value, authenticated: password.length > 0 }) + '\\n');
    }
    return records.map((record) => ({ status: 'sent', providerId: 'audit-' + record.id }));
  }
  async stop() {}
}

export const AuditSink = defineSinkConnector({
  className: 'AuditSink',
  version: '1.0.0',
  description: 'Appends every message to a file (a third-party connector in plain JavaScript).',
  config,
  createTask: () => new AuditTask(),
});
`;

let installSeconds = 0;

beforeAll(async () => {
  mkdirSync(tarballDir);
  // pnpm pack builds each package first (prepack: tsc -b, incremental) and turns workspace:* into versions.
  // The control center's prepack is its Vite build.
  for (const name of PACKED) await run('pnpm', ['pack', '--pack-destination', tarballDir], join(repoRoot, 'packages', name), 180_000);

  const packageNames = PACKED.map((name) => JSON.parse(readFileSync(join(repoRoot, 'packages', name, 'package.json'), 'utf8')).name as string);
  const dependencies = Object.fromEntries(packageNames.map((name) => [name, `file:${tarballOf(name)}`]));
  mkdirSync(appDir);
  writeFileSync(
    join(appDir, 'package.json'),
    JSON.stringify({
      name: 'omnibus-user',
      private: true,
      type: 'module',
      dependencies,
      // The packages depend on each other by version: these tarballs, never the registry.
      overrides: Object.fromEntries(packageNames.map((name) => [name, `$${name}`])),
    }),
  );
  mkdirSync(connectorDir, { recursive: true });
  writeFileSync(
    join(connectorDir, 'package.json'),
    JSON.stringify({
      name: 'audit-connector',
      version: '1.0.0',
      type: 'module',
      omnibus: { connectors: ['./index.js'] },
      dependencies: { '@omnibus/sdk': `file:${tarballOf('@omnibus/sdk')}` },
    }),
  );
  writeFileSync(join(connectorDir, 'index.js'), CONNECTOR_SOURCE);

  const started = Date.now();
  const npmInstall = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
  await Promise.all([run('npm', npmInstall, appDir, INSTALL_TIMEOUT_MS), run('npm', npmInstall, connectorDir, INSTALL_TIMEOUT_MS)]);
  installSeconds = (Date.now() - started) / 1000;
}, INSTALL_TIMEOUT_MS + 240_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the packed packages', () => {
  it('ship built JavaScript with declarations and source maps, no sources, no tests, no workspace references', async () => {
    for (const name of PUBLISHED) {
      const tarball = tarballOf(JSON.parse(readFileSync(join(repoRoot, 'packages', name, 'package.json'), 'utf8')).name as string);
      const files = (await run('tar', ['tzf', tarball], scratch, 30_000)).stdout.trim().split('\n');
      expect(files, name).toContain(name === 'omnibus' ? 'package/dist/main.js' : 'package/dist/index.js');
      expect(files.filter((f) => f.endsWith('.d.ts')).length, name).toBeGreaterThan(0);
      expect(files.filter((f) => f.endsWith('.js.map')).length, name).toBeGreaterThan(0);
      expect(files.filter((f) => !f.startsWith('package/dist/') && !['package/package.json', 'package/README.md', 'package/CONNECTOR.md'].includes(f)), name).toEqual([]);
      expect(files.filter((f) => /\.test\.|\/test\/|tsbuildinfo/.test(f)), name).toEqual([]);
      const manifest = (await run('tar', ['xzOf', tarball, 'package/package.json'], scratch, 30_000)).stdout;
      expect(manifest, name).not.toContain('workspace:');
      expect(manifest, name).not.toContain('omnibus-source');
      expect(manifest, name).not.toContain('./src/');
    }
  });

  it('ship the control center built: its index.html and hashed bundles, nothing else', async () => {
    const tarball = tarballOf('@omnibus/control-center');
    const files = (await run('tar', ['tzf', tarball], scratch, 30_000)).stdout.trim().split('\n');
    expect(files).toContain('package/dist/index.html');
    expect(files.filter((f) => /^package\/dist\/assets\/index-[\w-]+\.js$/.test(f)).length).toBeGreaterThan(0);
    expect(files.filter((f) => !f.startsWith('package/dist/') && !['package/package.json', 'package/README.md'].includes(f))).toEqual([]);
    const manifest = (await run('tar', ['xzOf', tarball, 'package/package.json'], scratch, 30_000)).stdout;
    expect(manifest).not.toContain('workspace:');
    // The distribution package depends on it, so installing @omnibus/omnibus alone brings the UI.
    const omnibus = JSON.parse((await run('tar', ['xzOf', tarballOf('@omnibus/omnibus'), 'package/package.json'], scratch, 30_000)).stdout) as {
      dependencies: Record<string, string>;
    };
    expect(omnibus.dependencies['@omnibus/control-center']).toBe('0.1.0');
  });

  it('install with plain npm, the connector with its own copy of the SDK', async () => {
    const installed = join(appDir, 'node_modules');
    const sizeKiB = Number((await run('du', ['-sk', installed], scratch, 60_000)).stdout.split(/\s/)[0]);
    console.log(`npm install of the packed packages: ${installSeconds.toFixed(0)} s; node_modules ${(sizeKiB / 1024).toFixed(0)} MiB`);
    expect(sizeKiB).toBeGreaterThan(1024);
    expect(existsSync(join(installed, '.bin', 'omnibus'))).toBe(true);
    // Two copies of the SDK: the worker's and the connector's own.
    expect(existsSync(join(installed, '@omnibus', 'sdk', 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(installed, '@omnibus', 'control-center', 'dist', 'index.html'))).toBe(true);
    expect(existsSync(join(connectorDir, 'node_modules', '@omnibus', 'sdk', 'dist', 'index.js'))).toBe(true);
  });
});

describe('the installed omnibus start, with a plain-JavaScript connector on its plugin path', () => {
  let worker: ChildProcess | undefined;
  let url = '';
  let logs = '';

  const api = async <T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  };

  /** Polls until `check` passes; fails with its last error (and the worker's log) after `ms`. */
  const eventually = async (what: string, check: () => Promise<void>, ms = 60_000): Promise<void> => {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        await check();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`${what}: ${(error as Error).message}\n--- worker log ---\n${logs.slice(-4000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  const audited = (): Array<{ id: string; value: Record<string, unknown>; authenticated: boolean }> =>
    existsSync(auditFile) ? readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line)) : [];

  const produce = async (value: Record<string, unknown>): Promise<string> => {
    const { status, body } = await api<{ messages: Array<{ id: string }> }>('POST', '/topics/audit/messages', { messages: [{ key: 'k', value }] });
    expect(status, JSON.stringify(body)).toBe(202);
    const id = body.messages[0]?.id;
    expect(id, JSON.stringify(body)).toBeTruthy();
    return id!;
  };

  const deliveryState = async (id: string): Promise<string | undefined> => {
    const { body } = await api<{ deliveries: Array<{ connector: string; state: string }> }>('GET', `/messages/${id}`);
    return body.deliveries?.find((d) => d.connector === 'audit')?.state;
  };

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const started = Date.now();
    worker = spawn(
      join(appDir, 'node_modules', '.bin', 'omnibus'),
      ['start', '--store', `lmdb:${join(scratch, 'data')}`, '--listeners', url, '--plugin-path', pluginsDir],
      { cwd: appDir, env: userEnv({ OMNIBUS_LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    worker.stdout!.on('data', (chunk: Buffer) => void (logs += chunk.toString()));
    worker.stderr!.on('data', (chunk: Buffer) => void (logs += chunk.toString()));
    await eventually(
      'the installed worker to answer /health',
      async () => {
        if (worker!.exitCode !== null) throw new Error(`omnibus start exited with ${worker!.exitCode}`);
        expect((await api('GET', '/health')).status).toBe(200);
      },
      120_000,
    );
    console.log(`installed omnibus start → /health answering: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  afterAll(async () => {
    if (!worker || worker.exitCode !== null) return;
    const exited = new Promise((resolve) => worker!.once('exit', resolve));
    worker.kill('SIGTERM');
    const timer = setTimeout(() => worker!.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  });

  it('serves the control center at /ui/, found from the installed core', async () => {
    const page = await fetch(`${url}/ui/`);
    expect(page.status, logs).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    const bundle = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(bundle, html).toBeDefined();
    const script = await fetch(`${url}${bundle}`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
  });

  it('finds the connector on its plugin path and the first-party ones through its dependencies', async () => {
    const { body } = await api<Array<{ class: string }>>('GET', '/connector-plugins');
    const classes = body.map((p) => p.class);
    for (const name of ['AuditSink', 'FileSink', 'EmailSink', 'SmsSink', 'WhatsAppSink', 'ScyllaCdcSource']) expect(classes, logs).toContain(name);
  });

  it('takes its config, delivers a produced message through it, and never shows its secret', async () => {
    expect((await api('POST', '/topics', { name: 'audit', shards: 4 })).status).toBeLessThan(300);
    const created = await api('POST', '/connectors', {
      name: 'audit',
      config: { 'connector.class': 'AuditSink', topics: 'audit', 'audit.file': auditFile, 'audit.password': SECRET, 'audit.healed.file': healedFile },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(JSON.stringify(created.body)).not.toContain(SECRET);

    const id = await produce({ text: 'hello' });
    await eventually('the message to reach the connector', async () => {
      expect(audited().map((line) => line.id)).toContain(id);
    });
    expect(audited().find((line) => line.id === id)).toEqual({ id, value: { text: 'hello' }, authenticated: true });
    await eventually('the delivery to be recorded as sent', async () => expect(await deliveryState(id)).toBe('sent'));

    const config = await api<Record<string, string>>('GET', '/connectors/audit/config');
    expect(config.status).toBe(200);
    expect(config.body['audit.file']).toBe(auditFile);
    expect(config.body['audit.password']).toBeDefined();
    expect(config.body['audit.password']).not.toBe(SECRET);
    expect(JSON.stringify(config.body)).not.toContain(SECRET);
    expect(JSON.stringify((await api('GET', '/connectors?expand=info&expand=status')).body)).not.toContain(SECRET);
  });

  it("handles a FatalConnectorError from the connector's own SDK copy as fatal: task FAILED, the batch handed again after a restart", async () => {
    const id = await produce({ fatal: true });
    await eventually('the task to fail', async () => {
      const { body } = await api<{ tasks: Array<{ state: string; trace?: string }> }>('GET', '/connectors/audit/status');
      expect(body.tasks[0]?.state).toBe('FAILED');
      expect(body.tasks[0]?.trace).toContain('the audit service refuses this account');
    });
    expect(audited().map((line) => line.id)).not.toContain(id);

    // The connector works again; a restart of the failed task must send the message it never sent.
    writeFileSync(healedFile, '');
    expect((await api('POST', '/connectors/audit/restart?includeTasks=true&onlyFailed=true')).status).toBeLessThan(300);
    await eventually('the batch to be handed again after the restart (not left in doubt)', async () => {
      expect(audited().map((line) => line.id)).toContain(id);
    });
    await eventually('the delivery to be recorded as sent', async () => expect(await deliveryState(id)).toBe('sent'));
  }, 180_000);
});

describe('the installed omnibus demo', () => {
  it('runs and ends successfully', async () => {
    const { stdout } = await run(join(appDir, 'node_modules', '.bin', 'omnibus'), ['demo', '--messages', '60', '--json'], appDir, 180_000);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ok: boolean; messages: number };
    expect(summary).toMatchObject({ ok: true, messages: 60 });
  }, 200_000);
});
