import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { SDK_API_VERSION } from '@omnibus/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { createPluginRegistry } from './plugins.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const examples = join(repoRoot, 'examples');
const omnibusPackage = join(repoRoot, 'packages/omnibus');
const scratch = mkdtempSync(join(tmpdir(), 'omnibus-plugins-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
// A core with neither connectors nor dependencies, so that these tests see only their own packages.
const bareCore = join(scratch, 'bare-core');
mkdirSync(bareCore);
writeFileSync(join(bareCore, 'package.json'), JSON.stringify({ name: '@omnibus/core', version: '0.0.0' }));

interface Line {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function capturingLogger() {
  const lines: Line[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  return { logger, lines };
}

/** Writes an npm package as a user would install it: package.json plus plain JavaScript modules. */
function writePackage(dir: string, manifest: Record<string, unknown>, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ version: '1.0.0', type: 'module', ...manifest }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}

const sinkModule = (className: string, extra = '') => `
export const ${className} = {
  type: 'sink', className: '${className}', version: '2.0.0', description: 'test', aliases: ['${className}Alias'],
  config: { keys: [] }, createTask() { return { start: async () => {}, put: async (r) => r.map(() => ({ status: 'sent' })), stop: async () => {} }; },
};
export default ${className};
${extra}`;

describe('createPluginRegistry', () => {
  it('finds hello-connector through plugin.path, by class name, alias and package-qualified name', async () => {
    const { logger } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [examples], logger });
    const hello = registry.find('HelloSink');
    expect(hello?.type).toBe('sink');
    expect(registry.find('Hello')).toBe(hello);
    expect(registry.find('hello-connector/HelloSink')).toBe(hello);
    expect(registry.list()).toContainEqual({ class: 'HelloSink', type: 'sink', version: '0.1.0' });
    const entry = registry.entries().find((e) => e.connector === hello);
    expect(entry).toMatchObject({ packageName: 'hello-connector', origin: 'plugin.path', packageDir: join(examples, 'hello-connector') });
    expect(registry.find('NoSuchSink')).toBeUndefined();
  });

  it("finds core's built-in FileSink, and the first-party connectors through the omnibus package's dependencies", async () => {
    const { logger, lines } = capturingLogger();
    const alone = await createPluginRegistry({ pluginPath: [], logger });
    // Core is a library: it depends on no connector package.
    expect(alone.entries().map((e) => e.packageName)).toEqual(['@omnibus/core']);
    const registry = await createPluginRegistry({ pluginPath: [], distributionDirs: [omnibusPackage], logger });
    const fileSink = registry.find('FileSink');
    expect(fileSink?.type).toBe('sink');
    expect(registry.find('FileStreamSink')).toBe(fileSink);
    expect(registry.find('@omnibus/core/FileSink')).toBe(fileSink);
    expect(registry.entries()[0]).toMatchObject({ packageName: '@omnibus/core', origin: 'core' });
    const packages = new Set(registry.entries().map((e) => e.packageName));
    for (const name of ['@omnibus/connector-email', '@omnibus/connector-sms', '@omnibus/connector-whatsapp', '@omnibus/cdc-source', '@omnibus/connector-webhook']) {
      expect(packages, name).toContain(name);
    }
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('does not find hello-connector without plugin.path: it is not a dependency of core', async () => {
    const { logger } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [], logger });
    expect(registry.find('HelloSink')).toBeUndefined();
    for (const entry of registry.entries()) expect(entry.origin).not.toBe('plugin.path');
  });

  it('reads a directory of packages (scoped ones included), and a plugin.path entry that is a package itself', async () => {
    const dir = join(scratch, 'plugins-a');
    writePackage(join(dir, 'alpha'), { name: 'alpha', omnibus: { connectors: ['./index.js'] } }, { 'index.js': sinkModule('AlphaSink') });
    writePackage(join(dir, '@acme', 'beta'), { name: '@acme/beta', omnibus: { connectors: ['./lib/beta.js'] } }, { 'lib/beta.js': sinkModule('BetaSink') });
    writePackage(join(dir, 'plain-lib'), { name: 'plain-lib' }, { 'index.js': 'throw new Error("must never be imported")' });
    const single = join(scratch, 'gamma');
    writePackage(single, { name: 'gamma', omnibus: { connectors: ['./gamma.js'] } }, { 'gamma.js': sinkModule('GammaSink') });

    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [dir, single], logger, corePackageDir: bareCore });
    expect(registry.find('AlphaSink')?.className).toBe('AlphaSink');
    expect(registry.find('@acme/beta/BetaSink')?.className).toBe('BetaSink');
    expect(registry.find('GammaSinkAlias')?.className).toBe('GammaSink');
    // A package without the manifest field is never imported.
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('keeps the first of two connectors with the same name and warns about the second', async () => {
    const dir = join(scratch, 'plugins-dup');
    writePackage(join(dir, 'a-first'), { name: 'a-first', omnibus: { connectors: ['./index.js'] } }, { 'index.js': sinkModule('DupSink') });
    writePackage(join(dir, 'b-second'), { name: 'b-second', omnibus: { connectors: ['./index.js'] } }, { 'index.js': sinkModule('DupSink') });
    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [dir], logger, corePackageDir: bareCore });
    const entries = registry.entries().filter((e) => e.connector.className === 'DupSink');
    expect(entries.map((e) => e.packageName)).toEqual(['a-first']);
    expect(registry.find('DupSink')).toBe(entries[0]?.connector);
    expect(registry.list().filter((p) => p.class === 'DupSink')).toHaveLength(1);
    const warning = lines.find((l) => l.level === 40 && l.name === 'DupSink');
    expect(warning).toMatchObject({ kept: 'a-first', ignored: 'b-second' });
  });

  it('logs a package that fails to load and still loads the others', async () => {
    const dir = join(scratch, 'plugins-broken');
    writePackage(join(dir, 'broken'), { name: 'broken', omnibus: { connectors: ['./index.js'] } }, { 'index.js': 'throw new Error("boom at import")' });
    writePackage(join(dir, 'missing-module'), { name: 'missing-module', omnibus: { connectors: ['./nope.js'] } }, {});
    writePackage(join(dir, 'bad-manifest'), { name: 'bad-manifest', omnibus: { connectors: 'index.js' } }, { 'index.js': sinkModule('NeverSink') });
    writePackage(join(dir, 'healthy'), { name: 'healthy', omnibus: { connectors: ['./index.js'] } }, { 'index.js': sinkModule('HealthySink') });
    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [dir, join(scratch, 'does-not-exist')], logger, corePackageDir: bareCore });
    expect(registry.find('HealthySink')).toBeDefined();
    expect(registry.find('NeverSink')).toBeUndefined();
    const errors = lines.filter((l) => l.level === 50);
    expect(errors.map((l) => l.package).sort()).toEqual(['bad-manifest', 'broken', 'missing-module']);
    expect(JSON.stringify(errors)).toContain('boom at import');
    expect(lines.some((l) => l.level === 40 && String(l.directory).endsWith('does-not-exist'))).toBe(true);
  });

  it('refuses manifest entries that point outside their package, and loads nothing from there', async () => {
    const dir = join(scratch, 'plugins-escape');
    // Code elsewhere on the host that a package would like the worker to run; importing it leaves a mark.
    const elsewhere = join(scratch, 'elsewhere');
    const mark = join(scratch, 'evil-ran');
    writePackage(elsewhere, { name: 'elsewhere' }, { 'evil.js': sinkModule('EvilSink', `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(mark)}, 'ran');`) });
    writePackage(join(dir, 'dotdot'), { name: 'dotdot', omnibus: { connectors: ['../../elsewhere/evil.js'] } }, {});
    writePackage(join(dir, 'absolute'), { name: 'absolute', omnibus: { connectors: [join(elsewhere, 'evil.js')] } }, {});
    writePackage(join(dir, 'file-url'), { name: 'file-url', omnibus: { connectors: [pathToFileURL(join(elsewhere, 'evil.js')).href] } }, {});
    writePackage(join(dir, 'linked-file'), { name: 'linked-file', omnibus: { connectors: ['./index.js'] } }, {});
    symlinkSync(join(elsewhere, 'evil.js'), join(dir, 'linked-file', 'index.js'));
    writePackage(join(dir, 'linked-dir'), { name: 'linked-dir', omnibus: { connectors: ['./lib/evil.js'] } }, {});
    symlinkSync(elsewhere, join(dir, 'linked-dir', 'lib'));
    writePackage(join(dir, 'inside'), { name: 'inside', omnibus: { connectors: ['./src/../src/index.js'] } }, { 'src/index.js': sinkModule('InsideSink') });
    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [dir], logger, corePackageDir: bareCore });
    expect(registry.find('InsideSink')).toBeDefined();
    expect(registry.find('EvilSink')).toBeUndefined();
    expect(existsSync(mark)).toBe(false);
    const refused = lines.filter((l) => l.level === 50 && l.msg.includes('refused'));
    expect(Object.fromEntries(refused.map((l) => [l.package, l.problem]))).toEqual({
      dotdot: 'module path leads outside the package directory',
      absolute: 'module paths must be relative to the package directory',
      'file-url': 'module paths must be relative to the package directory',
      'linked-file': 'module path leads outside the package directory',
      'linked-dir': 'module path leads outside the package directory',
    });
  });

  it("loads core's own connectors first, then those of its installed dependencies", async () => {
    const core = join(scratch, 'core-with-deps');
    writePackage(
      core,
      {
        name: '@omnibus/core',
        omnibus: { connectors: ['./builtin.js'] },
        dependencies: { 'dep-connector': '1.0.0', 'dep-library': '1.0.0' },
        devDependencies: { 'absent-dev-connector': '1.0.0' },
      },
      { 'builtin.js': sinkModule('BuiltinSink') },
    );
    writePackage(join(core, 'node_modules', 'dep-connector'), { name: 'dep-connector', omnibus: { connectors: ['./index.js'] } }, { 'index.js': sinkModule('DepSink') });
    writePackage(join(core, 'node_modules', 'dep-library'), { name: 'dep-library' }, { 'index.js': 'throw new Error("not a plugin")' });
    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [], logger, corePackageDir: core });
    expect(registry.entries().map((e) => [e.connector.className, e.origin])).toEqual([
      ['BuiltinSink', 'core'],
      ['DepSink', 'dependency'],
    ]);
    expect(registry.find('@omnibus/core/BuiltinSink')?.className).toBe('BuiltinSink');
    // A development dependency missing from a production install is not an error.
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  });

  it('refuses a connector built for another major of the SDK API, naming both versions, and loads the others', async () => {
    const dir = join(scratch, 'plugins-sdk-api');
    // What the SDK's defineSinkConnector stamps on a connector, as a copy of another version would.
    const stamped = (className: string, version: string) =>
      sinkModule(className).replace(`export default ${className};`, `${className}[Symbol.for('omnibus.sdk.apiVersion')] = '${version}';\nexport default ${className};`);
    const runtimeMajor = Number(SDK_API_VERSION.split('.')[0]);
    const future = `${runtimeMajor + 1}.0`;
    writePackage(join(dir, 'from-the-future'), { name: 'from-the-future', omnibus: { connectors: ['./index.js'] } }, { 'index.js': stamped('FutureSink', future) });
    writePackage(join(dir, 'same-major'), { name: 'same-major', omnibus: { connectors: ['./index.js'] } }, { 'index.js': stamped('LaterMinorSink', `${runtimeMajor}.9`) });
    writePackage(join(dir, 'unstamped'), { name: 'unstamped', omnibus: { connectors: ['./index.js'] } }, { 'index.js': sinkModule('HandWrittenSink') });
    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [dir], logger, corePackageDir: bareCore });
    expect(registry.find('FutureSink')).toBeUndefined();
    expect(registry.find('FutureSinkAlias')).toBeUndefined();
    expect(registry.find('LaterMinorSink')).toBeDefined();
    expect(registry.find('HandWrittenSink')).toBeDefined();
    const refusals = lines.filter((l) => l.level === 50);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ connector: 'FutureSink', package: 'from-the-future', connectorSdkApi: future, runtimeSdkApi: SDK_API_VERSION });
    expect(refusals[0]?.msg).toContain(future);
    expect(refusals[0]?.msg).toContain(SDK_API_VERSION);
  });

  it("loads the workspace's connectors, every one stamped with this runtime's SDK API version", async () => {
    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [examples], distributionDirs: [omnibusPackage], logger });
    const stamps = registry.entries().map((e) => (e.connector as unknown as Record<symbol, unknown>)[Symbol.for('omnibus.sdk.apiVersion')]);
    expect(stamps.length).toBeGreaterThan(4);
    expect(new Set(stamps)).toEqual(new Set([SDK_API_VERSION]));
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it("imports a manifest module as named, or as the package's exports give it under the process's custom conditions", async () => {
    // The test processes run with --conditions=omnibus-source (vitest.config.ts), as development runs do.
    expect(process.env.NODE_OPTIONS).toContain('--conditions=omnibus-source');
    const dir = join(scratch, 'plugins-conditions');
    const conditional = { 'omnibus-source': './src/index.js', default: './dist/index.js' };
    writePackage(
      join(dir, 'mapped'),
      { name: 'mapped', exports: { '.': conditional }, omnibus: { connectors: ['./dist/index.js'] } },
      { 'src/index.js': sinkModule('FromSourceSink'), 'dist/index.js': sinkModule('FromBuildSink') },
    );
    writePackage(
      join(dir, 'sugar'),
      { name: 'sugar', exports: conditional, omnibus: { connectors: ['dist/index.js'] } },
      { 'src/index.js': sinkModule('SugarSourceSink'), 'dist/index.js': sinkModule('SugarBuildSink') },
    );
    // A module the exports map does not name is imported as the file it is.
    writePackage(
      join(dir, 'unmapped'),
      { name: 'unmapped', exports: { '.': conditional }, omnibus: { connectors: ['./lib/connector.js'] } },
      { 'lib/connector.js': sinkModule('UnmappedSink') },
    );
    // Standard conditions never replace the file named: a dual package's ESM build stays the ESM build.
    writePackage(
      join(dir, 'dual'),
      { name: 'dual', exports: { '.': { require: './dist/index.cjs', import: './dist/index.js' } }, omnibus: { connectors: ['./dist/index.js'] } },
      { 'dist/index.js': sinkModule('DualEsmSink'), 'dist/index.cjs': 'throw new Error("the CommonJS build must not be loaded")' },
    );
    const { logger, lines } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [dir], logger, corePackageDir: bareCore });
    expect(registry.list().map((p) => p.class)).toEqual(['DualEsmSink', 'FromSourceSink', 'SugarSourceSink', 'UnmappedSink']);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('ignores exported values that are not connectors', async () => {
    const dir = join(scratch, 'plugins-mixed');
    writePackage(
      join(dir, 'mixed'),
      { name: 'mixed', omnibus: { connectors: ['./index.js'] } },
      {
        'index.js': sinkModule(
          'RealSink',
          `export const helper = () => 1; export const spec = { keys: [] };
           export const almost = { type: 'sink', className: 'AlmostSink' };
           export const wrongType = { type: 'transform', className: 'X', createTask() {} };`,
        ),
      },
    );
    const { logger } = capturingLogger();
    const registry = await createPluginRegistry({ pluginPath: [dir], logger, corePackageDir: bareCore });
    expect(registry.entries().filter((e) => e.packageName === 'mixed').map((e) => e.connector.className)).toEqual(['RealSink']);
  });
});
