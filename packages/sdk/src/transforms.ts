/**
 * Single message transformations and predicates, after Kafka Connect's `Transformation` and
 * `Predicate`: a connector config names a chain of them (`transforms`, `predicates`), and the
 * runtime runs every record through the chain, on a sink before `put`, on a source before
 * the record is published.
 *
 * Omnibus records are schemaless JSON, so a transformation sees what Kafka Connect's
 * schemaless records carry: a key, a value (any JSON value; `null` is a tombstone), string
 * headers, the topic and the timestamp. A transformation returns the record to pass on (a new
 * object: records are not changed in place) or `null` to drop it.
 *
 * A third-party package ships one the way it ships a connector: it depends on this package,
 * exports the result of {@link defineTransformation} or {@link definePredicate} from a module,
 * and names that module in its package.json:
 *
 *   "omnibus": { "transforms": ["./src/transforms.ts"], "predicates": ["./src/predicates.ts"] }
 */
import type { ConfigSpec, RawConfig } from './config.ts';
import { SDK_API_VERSION, SDK_API_VERSION_KEY } from './version.ts';

/** A record as a transformation or predicate sees it. */
export interface TransformRecord {
  topic: string;
  /**
   * The key. Omnibus keys are strings on the bus; a transformation may set any JSON value
   * (ValueToKey sets an object), which the runtime turns back into a string (canonical JSON)
   * once the chain has run.
   */
  key: unknown;
  /** The value; `null` is a tombstone. */
  value: unknown;
  headers: Readonly<Record<string, string>>;
  /** ms since the epoch; undefined when the record has none (a source record may not). */
  timestamp: number | undefined;
  /** The shard a sink record was read from (Kafka's partition); undefined before a source record is published. */
  shard?: number;
  /** The message id of a sink record (its position on the bus); undefined on source records without one. */
  id?: string;
  /** Whether the record is on its way to a sink (`sink`) or from a source to the bus (`source`). */
  readonly direction: 'sink' | 'source';
}

/** One configured stage: Kafka's `Transformation.apply`, synchronous. */
export interface TransformationInstance {
  /** The record to pass on, or null to drop it. Throw (e.g. a PermanentError) when the record cannot be transformed. */
  apply(record: TransformRecord): TransformRecord | null;
  /**
   * Awaited by the runtime before each batch goes through the chain (a sink's `put`, a source's
   * poll), so that `apply` stays synchronous while a stage reads what it needs from elsewhere
   * (the built-in RenderTemplate reads the template's live version here). A rejection fails
   * the batch, which is tried again, as a failed store read would.
   */
  prepare?(): Promise<void>;
  close?(): void;
}

export interface PredicateInstance {
  test(record: TransformRecord): boolean;
  close?(): void;
}

interface PluginDefinition<C> {
  /** Kafka's class name, e.g. `org.apache.kafka.connect.transforms.InsertField$Value`. */
  readonly className: string;
  /** Other accepted names, e.g. the short `InsertField$Value`. */
  readonly aliases?: readonly string[];
  readonly version: string;
  readonly description: string;
  /** Keys under `transforms.<alias>.` (or `predicates.<alias>.`), without that prefix. */
  readonly config: ConfigSpec<C>;
  /** Cross-key checks beyond the spec; problems by key (without the alias prefix). */
  validate?(config: C): Record<string, string[]>;
  readonly [SDK_API_VERSION_KEY]?: string;
}

export interface Transformation<C = Record<string, unknown>> extends PluginDefinition<C> {
  readonly type: 'transformation';
  /** Called once per task with the parsed config (Kafka's `configure`). */
  create(config: C): TransformationInstance;
}

export interface Predicate<C = Record<string, unknown>> extends PluginDefinition<C> {
  readonly type: 'predicate';
  create(config: C): PredicateInstance;
}

/** Keeps `C` inferred from the spec and stamps the SDK API version (checked at load, as for connectors). */
export function defineTransformation<C>(transformation: Omit<Transformation<C>, 'type'>): Transformation<C> {
  return { ...transformation, type: 'transformation', [SDK_API_VERSION_KEY]: SDK_API_VERSION };
}

export function definePredicate<C>(predicate: Omit<Predicate<C>, 'type'>): Predicate<C> {
  return { ...predicate, type: 'predicate', [SDK_API_VERSION_KEY]: SDK_API_VERSION };
}

export function isTransformation(value: unknown): value is Transformation<unknown> {
  return isPluginOf(value, 'transformation');
}

export function isPredicate(value: unknown): value is Predicate<unknown> {
  return isPluginOf(value, 'predicate');
}

function isPluginOf(value: unknown, type: string): boolean {
  if (value === null || typeof value !== 'object') return false;
  const candidate = value as { type?: unknown; className?: unknown; create?: unknown; config?: unknown };
  return candidate.type === type && typeof candidate.className === 'string' && candidate.className !== '' && typeof candidate.create === 'function';
}

/** A record for the test kit: only what the test cares about; the rest gets defaults. */
export interface TestTransformRecord {
  topic?: string;
  key?: unknown;
  value: unknown;
  headers?: Record<string, string>;
  timestamp?: number;
  shard?: number;
  id?: string;
  direction?: 'sink' | 'source';
}

function fullRecord(record: TestTransformRecord): TransformRecord {
  return {
    topic: record.topic ?? 'test',
    key: record.key ?? null,
    value: record.value,
    headers: record.headers ?? {},
    timestamp: record.timestamp,
    ...(record.shard !== undefined ? { shard: record.shard } : {}),
    ...(record.id !== undefined ? { id: record.id } : {}),
    direction: record.direction ?? 'sink',
  };
}

function configured<C>(plugin: PluginDefinition<C>, rawConfig: RawConfig): C {
  const config = plugin.config.parse(rawConfig);
  const problems = plugin.validate?.(config) ?? {};
  if (Object.keys(problems).length > 0) {
    const summary = Object.entries(problems)
      .map(([key, list]) => `${key}: ${list.join('; ')}`)
      .join(', ');
    throw new Error(`Invalid configuration of ${plugin.className}: ${summary}`);
  }
  return config;
}

/**
 * Test kit: configures the transformation as the runtime does (its spec, then `validate`)
 * and runs each record through it; a dropped record gives null.
 *
 *   const [out] = runTransformation(MyTransform, { field: 'x' }, [{ value: { a: 1 } }]);
 */
export function runTransformation<C>(transformation: Transformation<C>, rawConfig: RawConfig, records: TestTransformRecord[]): Array<TransformRecord | null> {
  const instance = transformation.create(configured(transformation, rawConfig));
  try {
    return records.map((record) => instance.apply(fullRecord(record)));
  } finally {
    instance.close?.();
  }
}

/** Test kit: the predicate's answer for each record. */
export function runPredicate<C>(predicate: Predicate<C>, rawConfig: RawConfig, records: TestTransformRecord[]): boolean[] {
  const instance = predicate.create(configured(predicate, rawConfig));
  try {
    return records.map((record) => instance.test(fullRecord(record)));
  } finally {
    instance.close?.();
  }
}
