// rest/ui.ts: the control center's files under /ui/, public while the API stays behind auth.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.ts';
import { authPlugin } from '../../src/rest/auth.ts';
import { controlCenterDirectory, uiRoutes } from '../../src/rest/ui.ts';

const INDEX = '<!doctype html><div id="app"></div><script type="module" src="/ui/assets/index-abc123.js"></script>';
const auth = { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` };

let dir: string;
let app: FastifyInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'omnibus-ui-files-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  app = Fastify();
  await app.register(authPlugin({ bearerTokens: [], basicUsers: [{ user: 'ops', password: 'pw' }] }));
  await app.register(async (scope) => {
    scope.get('/connectors', async () => []);
  });
  await app.register(uiRoutes({ logger: createLogger({ level: 'silent' }), directory: dir }));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the control center routes', () => {
  it('serve the shell at /ui and /ui/ without credentials, with a strict content security policy', async () => {
    for (const url of ['/ui', '/ui/']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(200);
      expect(response.body).toBe(INDEX);
      expect(response.headers['content-type']).toContain('text/html');
      expect(response.headers['cache-control']).toBe('no-cache');
      expect(response.headers['content-security-policy']).toContain("script-src 'self'");
      expect(response.headers['x-frame-options']).toBe('DENY');
    }
  });

  it('serve hashed assets for good, and client-side routes as the shell', async () => {
    const asset = await app.inject({ method: 'GET', url: '/ui/assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toContain('text/javascript');
    expect(asset.headers['cache-control']).toContain('immutable');
    const route = await app.inject({ method: 'GET', url: '/ui/messages/01abc' });
    expect(route.statusCode).toBe(200);
    expect(route.body).toBe(INDEX);
  });

  it('answer 404 for a missing asset, and never a file outside the build', async () => {
    expect((await app.inject({ method: 'GET', url: '/ui/assets/index-old.js' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/ui/favicon.ico' })).statusCode).toBe(404);
    // Files are served from what was read at start, by name: a dotted path matches none (or leaves /ui/ and meets auth).
    for (const url of ['/ui/%2e%2e/%2e%2e/package.json', '/ui/..%2f..%2fpackage.json', '/ui/assets/../../package.json']) {
      const escape = await app.inject({ method: 'GET', url });
      expect([401, 404]).toContain(escape.statusCode);
    }
  });

  it('leave the API behind auth', async () => {
    expect((await app.inject({ method: 'GET', url: '/connectors' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/connectors', headers: auth })).statusCode).toBe(200);
  });

  it('are absent, not failing, when the control center is not built', async () => {
    const bare = Fastify();
    await bare.register(uiRoutes({ logger: createLogger({ level: 'silent' }), directory: join(dir, 'nowhere') }));
    expect((await bare.inject({ method: 'GET', url: '/ui/' })).statusCode).toBe(404);
    await bare.close();
  });

  it('find the installed package of the distribution', () => {
    expect(controlCenterDirectory()).toMatch(/control-center[/\\]dist$/);
  });

  it("find it first among the distribution package's dependencies (pnpm's layout keeps it there only)", () => {
    const distribution = join(dir, 'distribution');
    const installed = join(distribution, 'node_modules', '@omnibus', 'control-center');
    mkdirSync(installed, { recursive: true });
    writeFileSync(join(distribution, 'package.json'), JSON.stringify({ name: 'distribution', dependencies: { '@omnibus/control-center': '0.1.0' } }));
    writeFileSync(join(installed, 'package.json'), JSON.stringify({ name: '@omnibus/control-center', version: '0.1.0', exports: { './package.json': './package.json' } }));
    expect(controlCenterDirectory([distribution])).toBe(join(installed, 'dist'));
    // A directory without it: core's own resolution.
    expect(controlCenterDirectory([join(dir, 'assets')])).toMatch(/control-center[/\\]dist$/);
    expect(controlCenterDirectory([join(dir, 'assets')])).not.toBe(join(installed, 'dist'));
  });
});
