/**
 * A connector's transformation chain, with Kafka Connect's keys and semantics:
 *
 *   transforms=<alias>,…                 the stages, in order
 *   transforms.<alias>.type              the transformation's class name (or an alias of it)
 *   transforms.<alias>.<key>             its own config
 *   transforms.<alias>.predicate         apply the stage only to records the predicate holds for…
 *   transforms.<alias>.negate            …or, when true, only to those it does not hold for
 *   predicates=<alias>,…                 the predicates stages may name
 *   predicates.<alias>.type / .<key>     a predicate's class and config
 *
 * A stage that returns null drops the record: later stages do not see it. Every problem is
 * reported on its key, in Kafka's words: a duplicate alias (on `transforms`/`predicates`), a
 * missing or unknown type (on `…type`), a predicate alias that `predicates` does not list (on
 * `…predicate`), and a stage's own config (on `transforms.<alias>.<key>`). Keys under an alias
 * that the list does not name are ignored, as Kafka ignores them (removing an alias from the
 * list is how a stage is switched off).
 */
import {
  ConfigError,
  ConfigSpec,
  isOmnibusError,
  Password,
  type ConfigInfos,
  type ConfigKey,
  type Predicate,
  type PredicateInstance,
  type RawConfig,
  type Transformation,
  type TransformationInstance,
  type TransformRecord,
} from '@omnibus/sdk';
import type { TransformCatalog } from './catalog.ts';
import { CREATE_WITH_SERVICES, type ChainServices } from './services.ts';
import { TransformError } from './record.ts';

type ConfigEntry = ConfigInfos['configs'][number];

export interface ChainValidation {
  /** Kafka's validate entries of every chain key (to add to a connector's own). */
  configs: ConfigEntry[];
  groups: string[];
  /** Problems by key; empty when the chain is valid. */
  errors: Record<string, string[]>;
}

interface Stage {
  alias: string;
  className: string;
  transformation: TransformationInstance;
  predicate?: PredicateInstance;
  negate: boolean;
}

const RESERVED_STAGE_KEYS = new Set(['type', 'predicate', 'negate']);

function key(name: string, type: ConfigKey['type'], documentation: string, group: string, options: Partial<ConfigKey> = {}): ConfigKey {
  return {
    name,
    type,
    documentation,
    importance: 'HIGH',
    defaultValue: undefined,
    required: false,
    group,
    orderInGroup: 0,
    displayName: name,
    width: 'NONE',
    validator: undefined,
    recommended: [],
    dependents: [],
    ...options,
  };
}

/** The aliases of `transforms` or `predicates`, or a problem. */
function aliasesOf(raw: unknown): { aliases: string[]; problem?: string } {
  if (raw === undefined || raw === null) return { aliases: [] };
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
  if (!list || !list.every((a): a is string => typeof a === 'string')) return { aliases: [], problem: 'Expected a comma-separated list' };
  const aliases = list.map((a) => a.trim()).filter(Boolean);
  if (new Set(aliases).size !== aliases.length) return { aliases, problem: 'Duplicate alias provided.' };
  return { aliases };
}

/** The raw keys under `prefix`, without it (Kafka's `originalsWithPrefix`), minus the chain's own keys. */
function subConfig(raw: RawConfig, prefix: string): RawConfig {
  const sub: RawConfig = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name.startsWith(prefix) && !RESERVED_STAGE_KEYS.has(name.slice(prefix.length))) sub[name.slice(prefix.length)] = value;
  }
  return sub;
}

function prefixed(keys: readonly ConfigKey[], prefix: string, group: string): ConfigKey[] {
  return keys.filter((k) => !RESERVED_STAGE_KEYS.has(k.name)).map((k, i) => ({ ...k, name: prefix + k.name, group, orderInGroup: i + 3 }));
}

type Kind = 'transforms' | 'predicates';

interface Resolved {
  alias: string;
  kind: Kind;
  plugin: Transformation<unknown> | Predicate<unknown>;
}

/**
 * Validates every chain key of `raw`. Also gives, for each valid alias, the plugin it names,
 * so that {@link buildChain} does not look it up twice.
 */
function examine(raw: RawConfig, catalog: TransformCatalog): ChainValidation & { resolved: Resolved[] } {
  const keys: ConfigKey[] = [];
  const extra: Record<string, string[]> = {};
  const problem = (name: string, message: string) => (extra[name] ??= []).push(message);
  const resolved: Resolved[] = [];
  const groups: string[] = [];

  const transforms = aliasesOf(raw.transforms);
  const predicates = aliasesOf(raw.predicates);
  keys.push(key('transforms', 'LIST', 'Aliases for the transformations to be applied to records.', 'Transforms', { defaultValue: [], orderInGroup: 1 }));
  keys.push(key('predicates', 'LIST', 'Aliases for the predicates used by transformations.', 'Predicates', { defaultValue: [], orderInGroup: 1 }));
  if (transforms.problem) problem('transforms', `Invalid value ${String(raw.transforms)} for configuration transforms: ${transforms.problem}`);
  if (predicates.problem) problem('predicates', `Invalid value ${String(raw.predicates)} for configuration predicates: ${predicates.problem}`);
  groups.push('Transforms', 'Predicates');

  const stage = (kind: Kind, alias: string) => {
    const prefix = `${kind}.${alias}.`;
    const group = `${kind === 'transforms' ? 'Transforms' : 'Predicates'}: ${alias}`;
    groups.push(group);
    const typeKey = `${prefix}type`;
    const noun = kind === 'transforms' ? 'transformation' : 'predicate';
    const all = kind === 'transforms' ? catalog.transformations() : catalog.predicates();
    keys.push(
      key(typeKey, 'CLASS', `Class for the '${alias}' ${noun}.`, group, {
        required: true,
        orderInGroup: 1,
        recommended: all.map((p) => p.className),
      }),
    );
    if (kind === 'transforms') {
      keys.push(key(`${prefix}predicate`, 'STRING', `The alias of a predicate used to determine whether to apply the '${alias}' transformation.`, group, { orderInGroup: 2, importance: 'MEDIUM', recommended: predicates.aliases }));
      keys.push(key(`${prefix}negate`, 'BOOLEAN', `Whether the configured predicate of '${alias}' should be negated.`, group, { defaultValue: false, orderInGroup: 3, importance: 'MEDIUM' }));
      const predicateAlias = raw[`${prefix}predicate`];
      if (typeof predicateAlias === 'string' && predicateAlias.trim() !== '' && !predicates.aliases.includes(predicateAlias.trim())) {
        problem(
          `${prefix}predicate`,
          `Invalid value ${predicateAlias} for configuration ${prefix}predicate: no predicate with alias ${predicateAlias.trim()} is listed in predicates (${predicates.aliases.join(',') || 'empty'})`,
        );
      }
    }
    const className = raw[typeKey];
    if (typeof className !== 'string' || className.trim() === '') return; // the spec reports it missing
    const name = className.trim();
    const plugin = kind === 'transforms' ? catalog.transformation(name) : catalog.predicate(name);
    if (!plugin) {
      const other = kind === 'transforms' ? catalog.predicate(name) : catalog.transformation(name);
      problem(
        typeKey,
        other
          ? `Invalid value ${name} for configuration ${typeKey}: ${name} is a ${kind === 'transforms' ? 'predicate' : 'transformation'}, not a ${noun}`
          : `Invalid value ${name} for configuration ${typeKey}: Class ${name} could not be found.`,
      );
      return;
    }
    keys.push(...prefixed(plugin.config.keys, prefix, group));
    const own = new ConfigSpec(plugin.config.keys);
    const sub = subConfig(raw, prefix);
    let parsed: unknown;
    try {
      parsed = own.parse(sub);
    } catch {
      // Its spec's problems are reported on the prefixed keys below.
      return;
    }
    try {
      const checks = (plugin.validate as ((config: unknown) => Record<string, string[]>) | undefined)?.(parsed) ?? {};
      // In Kafka's words, naming the key: these messages travel alone in a refused write's 400.
      for (const [name, messages] of Object.entries(checks)) {
        const given = raw[prefix + name];
        const shown = given === undefined ? null : own.isSecret(name) ? Password.HIDDEN : String(given);
        for (const message of messages) problem(prefix + name, `Invalid value ${shown} for configuration ${prefix + name}: ${message}`);
      }
    } catch (error) {
      problem(typeKey, `${name} refused its configuration: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    resolved.push({ alias, kind, plugin });
  };
  for (const alias of predicates.aliases) stage('predicates', alias);
  for (const alias of transforms.aliases) stage('transforms', alias);

  const infos = new ConfigSpec(keys).validate('chain', raw);
  const errors: Record<string, string[]> = {};
  for (const entry of infos.configs) {
    for (const message of extra[entry.value.name] ?? []) entry.value.errors.push(message);
    if (entry.value.errors.length > 0) errors[entry.value.name] = entry.value.errors;
  }
  return { configs: infos.configs, groups, errors, resolved };
}

/** Kafka's validate entries and problems of every chain key of a connector config. */
export function validateChain(raw: RawConfig, catalog: TransformCatalog): ChainValidation {
  const { configs, groups, errors } = examine(raw, catalog);
  return { configs, groups, errors };
}

/**
 * The keys the chain's stages declare, prefixed as they appear in the connector config: so
 * that a secret a third-party stage declares (a PASSWORD key) is masked like a connector's own.
 */
export function chainSpec(raw: RawConfig, catalog: TransformCatalog): ConfigSpec<unknown> {
  const keys: ConfigKey[] = [];
  for (const kind of ['transforms', 'predicates'] as const) {
    for (const alias of aliasesOf(raw[kind]).aliases) {
      const className = raw[`${kind}.${alias}.type`];
      if (typeof className !== 'string') continue;
      const plugin = kind === 'transforms' ? catalog.transformation(className.trim()) : catalog.predicate(className.trim());
      if (plugin) keys.push(...prefixed(plugin.config.keys, `${kind}.${alias}.`, `${kind}: ${alias}`));
    }
  }
  return new ConfigSpec<unknown>(keys);
}

/** A configured chain; {@link buildChain} makes one. */
export class TransformChain {
  constructor(private readonly stages: readonly Stage[]) {}

  get empty(): boolean {
    return this.stages.length === 0;
  }

  get aliases(): string[] {
    return this.stages.map((s) => s.alias);
  }

  /** Lets every stage that reads elsewhere catch up, before a batch goes through {@link apply}. */
  async prepare(): Promise<void> {
    for (const stage of this.stages) await stage.transformation.prepare?.();
  }

  /**
   * The record after every stage, or null when a stage dropped it. A stage that throws fails
   * the record: the error names the stage; an Omnibus error keeps its code.
   */
  apply(record: TransformRecord): TransformRecord | null {
    let current = record;
    for (const stage of this.stages) {
      try {
        if (stage.predicate && stage.predicate.test(current) === stage.negate) continue;
        const next = stage.transformation.apply(current);
        if (next === null) return null;
        current = next;
      } catch (error) {
        throw stageError(stage, error);
      }
    }
    return current;
  }

  close(): void {
    for (const stage of this.stages) {
      stage.transformation.close?.();
      stage.predicate?.close?.();
    }
  }
}

function stageError(stage: Stage, error: unknown): Error {
  const message = `Transformation ${stage.alias} (${stage.className}) failed: ${error instanceof Error ? error.message : String(error)}`;
  const failure = new TransformError(message);
  if (isOmnibusError(error)) Object.defineProperty(failure, 'code', { value: error.code });
  return failure;
}

interface ServicedTransformation<C> extends Transformation<C> {
  [CREATE_WITH_SERVICES]?: (config: C, services: ChainServices) => TransformationInstance;
}

/** Builds the chain a connector config describes; throws a ConfigError naming each bad key. */
export function buildChain(raw: RawConfig, catalog: TransformCatalog, services: ChainServices = {}): TransformChain {
  const { errors, resolved } = examine(raw, catalog);
  if (Object.keys(errors).length > 0) throw new ConfigError(errors);
  const predicates = new Map<string, PredicateInstance>();
  const stages: Stage[] = [];
  const created: Array<{ close?(): void }> = [];
  try {
    for (const { alias, kind, plugin } of resolved) {
      const prefix = `${kind}.${alias}.`;
      const config = new ConfigSpec(plugin.config.keys).parse(subConfig(raw, prefix));
      try {
        if (kind === 'predicates') {
          const instance = (plugin as Predicate<unknown>).create(config);
          created.push(instance);
          predicates.set(alias, instance);
        } else {
          const serviced = (plugin as ServicedTransformation<unknown>)[CREATE_WITH_SERVICES];
          const transformation = serviced ? serviced(config, services) : (plugin as Transformation<unknown>).create(config);
          created.push(transformation);
          const predicateAlias = typeof raw[`${prefix}predicate`] === 'string' ? (raw[`${prefix}predicate`] as string).trim() : '';
          const negateRaw = raw[`${prefix}negate`];
          const negate = negateRaw === true || (typeof negateRaw === 'string' && negateRaw.trim().toLowerCase() === 'true');
          const predicate = predicateAlias === '' ? undefined : predicates.get(predicateAlias);
          stages.push({ alias, className: plugin.className, transformation, negate, ...(predicate ? { predicate } : {}) });
        }
      } catch (error) {
        throw new ConfigError({ [`${prefix}type`]: [`${plugin.className} could not be configured: ${error instanceof Error ? error.message : String(error)}`] });
      }
    }
  } catch (error) {
    for (const instance of created) instance.close?.();
    throw error;
  }
  return new TransformChain(stages);
}

/** Adds the chain's validate entries and groups to a connector's validate response (keys it already has stay its own). */
export function mergeChainInfos(infos: ConfigInfos, chain: ChainValidation): void {
  const known = new Set(infos.configs.map((c) => c.definition.name));
  for (const entry of chain.configs) if (!known.has(entry.definition.name)) infos.configs.push(entry);
  for (const group of chain.groups) if (!infos.groups.includes(group)) infos.groups.push(group);
  infos.error_count = infos.configs.reduce((sum, c) => sum + c.value.errors.length, 0);
}
