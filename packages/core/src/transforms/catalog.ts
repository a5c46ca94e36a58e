/**
 * The transformations and predicates a worker knows: the built-ins, then those found in
 * packages (`"omnibus": {"transforms": [...], "predicates": [...]}`, see plugins.ts). Each is
 * found by its class name or one of its aliases; the first one to claim a name keeps it.
 */
import type { Predicate, Transformation } from '@omnibus/sdk';
import { Cast } from './cast.ts';
import { ExtractNewRecordState, ScyllaExtractNewRecordState } from './debezium.ts';
import { ExtractField } from './extract-field.ts';
import { Filter } from './filter.ts';
import { DropHeaders, HeaderFrom, InsertHeader } from './headers.ts';
import { HoistField } from './hoist-field.ts';
import { InsertField } from './insert-field.ts';
import { MaskField } from './mask-field.ts';
import { HasHeaderKey, RecordIsTombstone, TopicNameMatches, ValueFieldMatches } from './predicates.ts';
import { ReplaceField } from './replace-field.ts';
import { RegexRouter, TimestampRouter } from './routers.ts';
import { RenderTemplate } from './templates/render-template.ts';
import { SetSchemaMetadata } from './set-schema-metadata.ts';
import { ValueToKey } from './value-to-key.ts';

export const BUILTIN_TRANSFORMATIONS: readonly Transformation<unknown>[] = [
  ...[Cast, ExtractField, HeaderFrom, HoistField, InsertField, MaskField, ReplaceField, SetSchemaMetadata].flatMap((pair) => [pair.key, pair.value]),
  DropHeaders,
  ExtractNewRecordState,
  Filter,
  InsertHeader,
  RegexRouter,
  RenderTemplate,
  ScyllaExtractNewRecordState,
  TimestampRouter,
  ValueToKey,
] as unknown as readonly Transformation<unknown>[];

export const BUILTIN_PREDICATES: readonly Predicate<unknown>[] = [HasHeaderKey, RecordIsTombstone, TopicNameMatches, ValueFieldMatches] as unknown as readonly Predicate<unknown>[];

export interface TransformCatalog {
  transformation(name: string): Transformation<unknown> | undefined;
  predicate(name: string): Predicate<unknown> | undefined;
  transformations(): readonly Transformation<unknown>[];
  predicates(): readonly Predicate<unknown>[];
}

function indexByName<P extends { className: string; aliases?: readonly string[] }>(plugins: readonly P[]): Map<string, P> {
  const byName = new Map<string, P>();
  for (const plugin of plugins) {
    for (const name of [plugin.className, ...(plugin.aliases ?? [])]) if (!byName.has(name)) byName.set(name, plugin);
  }
  return byName;
}

/** A catalog of the built-ins followed by `extra` (plugins found in packages). */
export function transformCatalog(
  extra: { transformations?: readonly Transformation<unknown>[]; predicates?: readonly Predicate<unknown>[] } = {},
): TransformCatalog {
  const transformations = [...BUILTIN_TRANSFORMATIONS, ...(extra.transformations ?? [])];
  const predicates = [...BUILTIN_PREDICATES, ...(extra.predicates ?? [])];
  const transformationsByName = indexByName(transformations);
  const predicatesByName = indexByName(predicates);
  return {
    transformation: (name) => transformationsByName.get(name),
    predicate: (name) => predicatesByName.get(name),
    transformations: () => transformations,
    predicates: () => predicates,
  };
}

/** The built-ins alone. */
export const BUILTIN_CATALOG: TransformCatalog = transformCatalog();
