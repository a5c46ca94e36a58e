/** Third-party transformations and predicates found through plugin.path, and run in a chain. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createPluginRegistry } from '../../src/runtime/plugins.ts';
import { buildChain } from '../../src/transforms/chain.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const examples = join(repoRoot, 'examples');
const scratch = mkdtempSync(join(tmpdir(), 'omnibus-transform-plugins-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const bareCore = join(scratch, 'bare-core');
mkdirSync(bareCore);
writeFileSync(join(bareCore, 'package.json'), JSON.stringify({ name: '@omnibus/core', version: '0.0.0' }));

function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { logger, lines };
}

describe('transformations and predicates through plugin.path', () => {
  it("finds hello-connector's Greet and HasName and runs them in a chain with the built-ins", async () => {
    const { logger } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [examples], logger, corePackageDir: bareCore });
    const catalog = registry.transformCatalog();
    expect(catalog.transformation('hello-connector.Greet')?.type).toBe('transformation');
    expect(catalog.transformation('Greet')).toBe(catalog.transformation('hello-connector.Greet'));
    expect(catalog.predicate('hello-connector.HasName')?.type).toBe('predicate');
    // The built-ins are there too.
    expect(catalog.transformation('InsertField$Value')).toBeDefined();

    const chain = buildChain(
      {
        transforms: 'greet,tag',
        'transforms.greet.type': 'hello-connector.Greet',
        'transforms.greet.field': 'name',
        'transforms.greet.predicate': 'named',
        'transforms.tag.type': 'InsertHeader',
        'transforms.tag.header': 'greeted-by',
        'transforms.tag.value.literal': 'hello-connector',
        predicates: 'named',
        'predicates.named.type': 'hello-connector.HasName',
      },
      catalog,
    );
    const base = { topic: 't', key: 'k', headers: {}, timestamp: 0, direction: 'sink' as const };
    expect(chain.apply({ ...base, value: { name: 'Ada' } })).toMatchObject({ value: { name: 'Hello, Ada' }, headers: { 'greeted-by': 'hello-connector' } });
    expect(chain.apply({ ...base, value: { name: '' } })?.value).toEqual({ name: '' });
  });

  it('refuses a plugin built for another SDK API major, and says why', async () => {
    const dir = join(scratch, 'plugins', 'future-transform');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'future-transform', version: '1.0.0', type: 'module', omnibus: { transforms: ['./index.js'] } }));
    writeFileSync(
      join(dir, 'index.js'),
      `export const Future = { type: 'transformation', className: 'Future', version: '1', description: 'x', config: { keys: [] },
         create: () => ({ apply: (r) => r }), [Symbol.for('omnibus.sdk.apiVersion')]: '99.0' };`,
    );
    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [join(scratch, 'plugins')], logger, corePackageDir: bareCore });
    expect(registry.transformCatalog().transformation('Future')).toBeUndefined();
    expect(lines.some((l) => l.level >= 50 && /Future of future-transform refused: it was built for SDK API 99.0/.test(l.msg))).toBe(true);
  });
});
