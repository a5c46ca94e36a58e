/**
 * Finds the transformations and predicates a package ships, as plugins.ts finds connectors:
 * its package.json names their modules,
 *
 *   "omnibus": { "transforms": ["./src/transforms.ts"], "predicates": ["./src/predicates.ts"] }
 *
 * and every export of those modules shaped like a transformation (or predicate) is one. One
 * stamped with an SDK API of another major than the runtime's is refused, as a connector is.
 */
import { pathToFileURL } from 'node:url';
import { isPredicate, isTransformation, sdkApiIncompatibility, sdkApiVersionOf, SDK_API_VERSION, type Predicate, type Transformation } from '@omnibus/sdk';
import { transformCatalog, type TransformCatalog } from './catalog.ts';

interface DiscoveryLogger {
  debug(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface FoundTransformPlugin {
  plugin: Transformation<unknown> | Predicate<unknown>;
  packageName: string;
}

/** What the packages scanned so far ship, in discovery order. */
export class TransformPlugins {
  readonly found: FoundTransformPlugin[] = [];
  private readonly seen = new Set<unknown>();

  /**
   * Loads the `transforms` and `predicates` modules a manifest names; problems are logged, never
   * thrown. `locate` gives a module's file, checked to lie inside its package (as a connector
   * module's is), or why it is refused.
   */
  async load(
    packageName: string,
    omnibus: { transforms?: unknown; predicates?: unknown } | undefined,
    logger: DiscoveryLogger,
    locate: (modulePath: string) => string | { problem: string },
  ): Promise<void> {
    for (const kind of ['transforms', 'predicates'] as const) {
      const modules = omnibus?.[kind];
      if (modules === undefined) continue;
      if (!Array.isArray(modules) || !modules.every((m): m is string => typeof m === 'string')) {
        logger.error({ package: packageName }, `package.json "omnibus.${kind}" must be an array of module paths; ignored`);
        continue;
      }
      const accepts = kind === 'transforms' ? isTransformation : isPredicate;
      for (const modulePath of modules) {
        const moduleFile = locate(modulePath);
        if (typeof moduleFile !== 'string') {
          logger.error({ package: packageName, module: modulePath, problem: moduleFile.problem }, `${kind} module refused; its plugins are unavailable`);
          continue;
        }
        let exported: Record<string, unknown>;
        try {
          exported = (await import(pathToFileURL(moduleFile).href)) as Record<string, unknown>;
        } catch (error) {
          logger.error({ package: packageName, module: modulePath, err: error }, `${kind} module failed to load; its plugins are unavailable`);
          continue;
        }
        for (const value of Object.values(exported)) {
          if (!accepts(value) || this.seen.has(value)) continue;
          this.seen.add(value);
          const built = sdkApiVersionOf(value);
          const problem = built === undefined ? undefined : sdkApiIncompatibility(built, SDK_API_VERSION);
          if (problem !== undefined) {
            logger.error({ plugin: value.className, package: packageName, pluginSdkApi: built, runtimeSdkApi: SDK_API_VERSION }, `${value.className} of ${packageName} refused: ${problem}`);
            continue;
          }
          this.found.push({ plugin: value as Transformation<unknown> | Predicate<unknown>, packageName });
          logger.debug({ plugin: value.className, type: value.type, package: packageName }, `${value.type} found`);
        }
      }
    }
  }

  /** The built-ins and everything found; a built-in's names are never taken over. */
  catalog(): TransformCatalog {
    return transformCatalog({
      transformations: this.found.map((f) => f.plugin).filter((p): p is Transformation<unknown> => p.type === 'transformation'),
      predicates: this.found.map((f) => f.plugin).filter((p): p is Predicate<unknown> => p.type === 'predicate'),
    });
  }
}
