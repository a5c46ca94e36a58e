/**
 * The control center (`@omnibus/control-center`), served at `/ui/` when that package is
 * installed: the distribution package (`@omnibus/omnibus`) depends on it; core does not. Its files are read once at start (a
 * few small assets); a path that is not a file answers index.html, whose client-side router
 * shows the page. The shell loads without credentials (auth.ts lists `/ui` and `/ui/*` as public); every
 * API call it makes carries them.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from 'pino';

export const UI_PREFIX = '/ui/';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The UI talks to this origin only; no inline script, no framing (clickjacking of the actions).
 * Inline styles stay allowed: the charts set colours through the style attribute.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

interface Asset {
  body: Buffer;
  type: string;
  /** Vite names bundle files by content hash: cacheable for good. */
  immutable: boolean;
}

/**
 * Where the installed control center's built files are, or undefined when it is not installed
 * or not built. Looked up from each package in `from` (the distribution packages that depend
 * on it: pnpm's layout keeps it beside them only), then from core's own location (npm's flat
 * node_modules, where it lies beside core; the workspace).
 */
export function controlCenterDirectory(from: readonly string[] = []): string | undefined {
  for (const base of [...from.map((dir) => join(dir, 'package.json')), import.meta.url]) {
    try {
      const manifest = createRequire(base).resolve('@omnibus/control-center/package.json');
      return join(dirname(manifest), 'dist');
    } catch {
      // Not resolvable from there: the next place.
    }
  }
  return undefined;
}

async function readAssets(directory: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    // parentPath from Node 20.12; `path` before it.
    const file = join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    const path = relative(directory, file).split(sep).join('/');
    assets.set(path, {
      body: await readFile(file),
      type: CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      immutable: path.startsWith('assets/'),
    });
  }
  return assets;
}

let reportedMissing = false;

export interface UiRoutesDeps {
  logger: Logger;
  /** The built files; found through the installed package when not given. */
  directory?: string;
  /** Package directories the control center may also be a dependency of (see {@link controlCenterDirectory}). */
  searchFrom?: readonly string[];
}

export function uiRoutes(deps: UiRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    const directory = deps.directory ?? controlCenterDirectory(deps.searchFrom);
    const assets = directory ? await readAssets(directory).catch(() => undefined) : undefined;
    const index = assets?.get('index.html');
    if (!assets || !index) {
      if (!reportedMissing) {
        reportedMissing = true;
        deps.logger.info(
          { directory },
          'control center not served at /ui/: @omnibus/control-center is not installed or not built (pnpm --filter @omnibus/control-center build)',
        );
      }
      return;
    }

    const send = (reply: FastifyReply, asset: Asset) =>
      reply
        .headers(SECURITY_HEADERS)
        .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
        .type(asset.type)
        .send(asset.body);

    // The router reads /ui/ as /ui (ignoreTrailingSlash), which '/ui/*' does not match: the shell's own route.
    app.get('/ui', async (_request, reply) => send(reply, index));
    app.get<{ Params: { '*': string } }>(`${UI_PREFIX}*`, async (request, reply) => {
      const path = request.params['*'];
      const asset = assets.get(path);
      if (asset) return send(reply, asset);
      // A missing bundle file is a 404 (a stale page after an upgrade); any other path is a client-side route.
      if (path.startsWith('assets/') || extname(path) !== '') {
        return reply.status(404).send({ error_code: 404, message: `HTTP 404 Not Found: ${request.method} ${request.url.split('?')[0]}` });
      }
      return send(reply, index);
    });
  };
}
