/**
 * Connector discovery, the analogue of Kafka Connect's `plugin.path` scanning and
 * `META-INF/services` manifests. A package declares its connectors in its package.json:
 *
 *   "omnibus": { "connectors": ["./dist/index.js"] }
 *
 * and every object those modules export with a `type` of 'sink' | 'source' and a `className`
 * is a connector; `"transforms"` and `"predicates"` name modules of transformations and
 * predicates the same way (see transforms/discovery.ts). Packages are found in three places:
 * @omnibus/core itself (the built-ins), the distribution packages the worker is given and
 * their dependencies (the `omnibus` command's package depends on the first-party connectors),
 * then every package under the directories of the worker's `plugin.path` (third-party
 * connectors, installed with npm).
 *
 * A manifest module is imported as the file it names, unless the package's `exports` entry
 * for that file gives another target under a custom condition the process runs with (Node's
 * `--conditions`): inside this repository the `omnibus-source` condition maps each package to
 * its TypeScript sources, so development runs and tests load the sources while an installed
 * package loads its build. Either way the file must lie inside its package.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sdkApiIncompatibility, sdkApiVersionOf, SDK_API_VERSION, type Connector } from '@omnibus/sdk';
import type { Logger } from 'pino';
import type { TransformCatalog } from '../transforms/catalog.ts';
import { TransformPlugins } from '../transforms/discovery.ts';
import type { PluginInfo, PluginRegistry } from './types.ts';

/** One connector found, with the package that ships it. */
export interface PluginEntry {
  connector: Connector;
  packageName: string;
  /** Absolute directory of the package (where its generated docs go). */
  packageDir: string;
  /** Where the package was found: core itself, a distribution package or a dependency of one, or `plugin.path`. */
  origin: 'core' | 'dependency' | 'plugin.path';
}

export interface DiscoveredPlugins extends PluginRegistry {
  /** Every connector found, in discovery order (built-ins first). */
  entries(): PluginEntry[];
  /** The built-in transformations and predicates, then those packages ship (`"omnibus": {"transforms", "predicates"}`). */
  transformCatalog(): TransformCatalog;
}

export interface PluginRegistryOptions {
  /** Directories holding connector packages, or connector packages themselves. */
  pluginPath: string[];
  logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** The package whose own connectors and dependencies are scanned first; @omnibus/core by default. */
  corePackageDir?: string;
  /**
   * Distribution packages (such as the `omnibus` command's), scanned after core: their own
   * connectors and those of their dependencies.
   */
  distributionDirs?: string[];
}

interface PackageManifest {
  name?: string;
  version?: string;
  exports?: unknown;
  omnibus?: { connectors?: unknown; transforms?: unknown; predicates?: unknown };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const CORE_PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export async function createPluginRegistry(options: PluginRegistryOptions): Promise<DiscoveredPlugins> {
  const { logger } = options;
  const coreDir = options.corePackageDir ?? CORE_PACKAGE_DIR;
  const entries: PluginEntry[] = [];
  const byName = new Map<string, PluginEntry>();
  const seenObjects = new Set<Connector>();
  const seenPackageDirs = new Set<string>();
  const transformPlugins = new TransformPlugins();

  const claim = (name: string, entry: PluginEntry): void => {
    const holder = byName.get(name);
    if (holder === undefined) {
      byName.set(name, entry);
    } else if (holder.connector !== entry.connector) {
      logger.warn(
        { name, kept: holder.packageName, ignored: entry.packageName },
        'connector name is already taken by another package; the first one found wins',
      );
    }
  };

  const loadPackage = async (packageDir: string, origin: PluginEntry['origin']): Promise<void> => {
    const realDir = safeRealPath(packageDir);
    if (seenPackageDirs.has(realDir)) return;
    seenPackageDirs.add(realDir);
    const manifest = readManifest(packageDir);
    if (!manifest) return;
    const packageName = manifest.name ?? packageDir;
    await transformPlugins.load(packageName, manifest.omnibus, logger, (modulePath) => moduleInsidePackage(realDir, connectorModulePath(manifest, modulePath)));
    const modules = manifest.omnibus?.connectors;
    if (modules === undefined) {
      if (origin === 'plugin.path') logger.debug({ package: packageName }, 'package declares no connectors; skipped');
      return;
    }
    if (!Array.isArray(modules) || !modules.every((m): m is string => typeof m === 'string')) {
      logger.error({ package: packageName }, 'package.json "omnibus.connectors" must be an array of module paths; package skipped');
      return;
    }
    for (const modulePath of modules) {
      const moduleFile = moduleInsidePackage(realDir, connectorModulePath(manifest, modulePath));
      if (typeof moduleFile !== 'string') {
        logger.error({ package: packageName, module: modulePath, problem: moduleFile.problem }, 'connector module refused; its connectors are unavailable');
        continue;
      }
      let exported: Record<string, unknown>;
      try {
        exported = (await import(pathToFileURL(moduleFile).href)) as Record<string, unknown>;
      } catch (error) {
        logger.error({ package: packageName, module: modulePath, err: error }, 'connector module failed to load; its connectors are unavailable');
        continue;
      }
      for (const value of Object.values(exported)) {
        if (!isConnector(value) || seenObjects.has(value)) continue;
        seenObjects.add(value);
        if (!sdkApiAccepted(value, packageName, logger)) continue;
        const entry: PluginEntry = { connector: value, packageName, packageDir: realDir, origin };
        if (byName.has(value.className)) {
          claim(value.className, entry);
          continue;
        }
        entries.push(entry);
        claim(value.className, entry);
        claim(`${packageName}/${value.className}`, entry);
        for (const alias of value.aliases ?? []) claim(alias, entry);
        logger.debug({ connector: value.className, package: packageName, origin }, 'connector found');
      }
    }
  };

  const loadWithDependencies = async (packageDir: string, origin: PluginEntry['origin']): Promise<void> => {
    await loadPackage(packageDir, origin);
    const manifest = readManifest(packageDir);
    const require = createRequire(join(packageDir, 'package.json'));
    // Real dependencies only: development dependencies are absent from an installed package.
    const dependencyNames = [...Object.keys(manifest?.dependencies ?? {}), ...Object.keys(manifest?.optionalDependencies ?? {})].sort();
    for (const name of new Set(dependencyNames)) {
      const dir = findPackageDir(name, require.resolve.paths(name) ?? []);
      // An optional dependency may be missing: not finding one is normal.
      if (dir) await loadPackage(dir, 'dependency');
    }
  };
  await loadWithDependencies(coreDir, 'core');
  for (const distributionDir of options.distributionDirs ?? []) await loadWithDependencies(distributionDir, 'dependency');

  for (const directory of options.pluginPath) {
    const absolute = resolve(directory);
    if (!isDirectory(absolute)) {
      logger.warn({ directory: absolute }, 'plugin.path entry is not a directory; skipped');
      continue;
    }
    for (const packageDir of packagesIn(absolute)) await loadPackage(packageDir, 'plugin.path');
  }

  logger.info({ connectors: entries.map((e) => e.connector.className) }, 'connector plugins loaded');
  const catalog = transformPlugins.catalog();

  return {
    list(): PluginInfo[] {
      return entries
        .map(({ connector }) => ({ class: connector.className, type: connector.type, version: connector.version }))
        .sort((a, b) => (a.class < b.class ? -1 : a.class > b.class ? 1 : 0));
    },
    find(className: string): Connector | undefined {
      return byName.get(className)?.connector;
    },
    entries(): PluginEntry[] {
      return [...entries];
    },
    transformCatalog: () => catalog,
  };
}

/**
 * The real path of a manifest's module when it lies inside its package (symbolic links
 * resolved), else why not: a package must not make the worker load code from elsewhere
 * (`../../other/evil.js`, an absolute path, a link out of the package).
 */
function moduleInsidePackage(realPackageDir: string, modulePath: string): string | { problem: string } {
  if (isAbsolute(modulePath) || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(modulePath)) {
    return { problem: 'module paths must be relative to the package directory' };
  }
  let real: string;
  try {
    real = realpathSync(resolve(realPackageDir, modulePath));
  } catch {
    return { problem: 'module file not found in the package' };
  }
  const rel = relative(realPackageDir, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    return { problem: 'module path leads outside the package directory' };
  }
  return real;
}

function isConnector(value: unknown): value is Connector {
  if (value === null || typeof value !== 'object') return false;
  const candidate = value as Partial<Connector>;
  return (
    (candidate.type === 'sink' || candidate.type === 'source') &&
    typeof candidate.className === 'string' &&
    candidate.className !== '' &&
    typeof candidate.createTask === 'function'
  );
}

/**
 * A connector stamped (by the SDK's define helpers) with an SDK API of another major than
 * this runtime's is refused, with both versions in the log line. One without a stamp (an
 * object written by hand) is loaded on its shape alone.
 */
function sdkApiAccepted(connector: Connector, packageName: string, logger: PluginRegistryOptions['logger']): boolean {
  const built = sdkApiVersionOf(connector);
  if (built === undefined) {
    logger.debug({ connector: connector.className, package: packageName }, 'connector declares no SDK API version; loaded on its shape');
    return true;
  }
  const problem = sdkApiIncompatibility(built, SDK_API_VERSION);
  if (problem === undefined) return true;
  logger.error(
    { connector: connector.className, package: packageName, connectorSdkApi: built, runtimeSdkApi: SDK_API_VERSION },
    `connector ${connector.className} of ${packageName} refused: ${problem}`,
  );
  return false;
}

/**
 * The custom conditions this process resolves packages with (`--conditions`/`-C`, on its
 * command line or in NODE_OPTIONS); Node offers no API that lists them.
 */
const CUSTOM_CONDITIONS: ReadonlySet<string> = conditionsIn([...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]);

function conditionsIn(args: string[]): Set<string> {
  const found = new Set<string>();
  args.forEach((arg, index) => {
    const flag = /^(?:--conditions|-C)(?:=(.+))?$/.exec(arg);
    const value = flag ? (flag[1] ?? args[index + 1]) : undefined;
    if (value) found.add(value);
  });
  return found;
}

/**
 * The path of a connector module within its package: the file the manifest names, unless the
 * package's `exports` entry for that file gives another target under one of the process's
 * custom conditions. moduleInsidePackage checks the result, whichever it is.
 */
function connectorModulePath(manifest: PackageManifest, modulePath: string): string {
  if (isAbsolute(modulePath) || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(modulePath)) return modulePath;
  const named = `./${modulePath.replace(/^\.\//, '')}`;
  const chosen = CUSTOM_CONDITIONS.size > 0 ? conditionalTarget(manifest.exports, named) : undefined;
  return chosen ?? named;
}

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object';

/** Every target of an exports entry, under any condition. */
const targetsOf = (entry: unknown): string[] =>
  typeof entry === 'string' ? [entry] : isRecord(entry) ? Object.values(entry).flatMap(targetsOf) : [];

/** In the exports entry one of whose targets is `named`, the target a custom condition picks. */
function conditionalTarget(exports: unknown, named: string): string | undefined {
  // `exports` is one entry (a string or conditions) or a map of subpaths ('.', './dev-server') to entries.
  const subpaths = isRecord(exports) && Object.keys(exports).some((key) => key.startsWith('.'));
  const entries = subpaths ? Object.values(exports) : [exports];
  const entry = entries.find((candidate) => targetsOf(candidate).includes(named));
  return entry === undefined ? undefined : customTarget(entry);
}

function customTarget(entry: unknown): string | undefined {
  if (!isRecord(entry)) return undefined;
  for (const [condition, target] of Object.entries(entry)) {
    if (!CUSTOM_CONDITIONS.has(condition)) continue;
    return typeof target === 'string' ? target : customTarget(target);
  }
  return undefined;
}

function readManifest(packageDir: string): PackageManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as PackageManifest;
  } catch {
    return undefined;
  }
}

/** A plugin.path entry is either a package itself, or a directory of packages (`@scope/name` included). */
function packagesIn(directory: string): string[] {
  if (existsSync(join(directory, 'package.json'))) return [directory];
  const packages: string[] = [];
  for (const name of readdirSync(directory).sort()) {
    const child = join(directory, name);
    if (name.startsWith('.') || !isDirectory(child)) continue;
    if (name.startsWith('@')) {
      for (const scoped of readdirSync(child).sort()) {
        const scopedDir = join(child, scoped);
        if (existsSync(join(scopedDir, 'package.json'))) packages.push(scopedDir);
      }
    } else if (existsSync(join(child, 'package.json'))) {
      packages.push(child);
    }
  }
  return packages;
}

/** Looks the package up in node_modules directories, as Node does, without needing `exports` to expose package.json. */
function findPackageDir(name: string, searchPaths: string[]): string | undefined {
  for (const nodeModules of searchPaths) {
    const dir = join(nodeModules, name);
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return undefined;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function safeRealPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}
