/**
 * The transformations and predicates as Kafka's `/connector-plugins` shows them: listed with
 * `?connectorsOnly=false` (type `transformation` or `predicate`), and their config definitions
 * at `/connector-plugins/{class}/config`.
 */
import { ConfigSpec, type ConfigInfos } from '@omnibus/sdk';
import type { TransformCatalog } from './catalog.ts';

export interface TransformPluginInfo {
  class: string;
  type: 'transformation' | 'predicate';
  version: string;
}

const byClass = (a: { class: string }, b: { class: string }) => (a.class < b.class ? -1 : a.class > b.class ? 1 : 0);

/** Transformations, then predicates, each sorted by class name, as Kafka lists them after the connectors. */
export function transformPluginInfos(catalog: TransformCatalog): TransformPluginInfo[] {
  const transformations = catalog.transformations().map((t) => ({ class: t.className, type: 'transformation' as const, version: t.version }));
  const predicates = catalog.predicates().map((p) => ({ class: p.className, type: 'predicate' as const, version: p.version }));
  return [...transformations.sort(byClass), ...predicates.sort(byClass)];
}

/** The config definitions of the transformation or predicate named `name` (class name or alias), or undefined. */
export function transformPluginConfig(catalog: TransformCatalog, name: string): Array<ConfigInfos['configs'][number]['definition']> | undefined {
  const plugin = catalog.transformation(name) ?? catalog.predicate(name);
  if (!plugin) return undefined;
  return new ConfigSpec(plugin.config.keys).validate(plugin.className, {}).configs.map((c) => c.definition);
}
