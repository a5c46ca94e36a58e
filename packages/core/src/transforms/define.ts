/**
 * Helpers for declaring the built-ins: Kafka's transformations come as a `$Key`/`$Value` pair
 * of classes over one implementation, and every built-in reports the runtime's version.
 */
import { defineTransformation, type ConfigSpec, type Transformation, type TransformationInstance } from '@omnibus/sdk';
import { VERSION } from '../version.ts';
import { kafkaNames, type Side } from './record.ts';

export interface PairDefinition<C> {
  packageName: string;
  simpleName: string;
  description: string;
  config: ConfigSpec<C>;
  validate?(config: C): Record<string, string[]>;
  create(config: C, side: Side): TransformationInstance;
}

/**
 * The `$Key` and `$Value` classes of one transformation. The bare name (`InsertField`, and the
 * package-qualified one) selects `$Value`, which is what a config without the suffix means in
 * practice: the key of an Omnibus message is a routing string, its value the payload.
 */
export function keyValuePair<C>(definition: PairDefinition<C>): { key: Transformation<C>; value: Transformation<C> } {
  const make = (side: Side): Transformation<C> =>
    defineTransformation<C>({
      ...kafkaNames(definition.packageName, definition.simpleName, side, 'value'),
      version: VERSION,
      description: `${definition.description} (on the record's ${side}).`,
      config: definition.config,
      ...(definition.validate ? { validate: definition.validate } : {}),
      create: (config) => definition.create(config, side),
    });
  return { key: make('key'), value: make('value') };
}

export function single<C>(definition: Omit<Transformation<C>, 'type' | 'version'>): Transformation<C> {
  return defineTransformation<C>({ ...definition, version: VERSION });
}
