/**
 * Kafka's SetSchemaMetadata renames and versions a record's Connect schema. Omnibus records are
 * schemaless JSON (a topic's JSON Schema belongs to the topic: POST /topics), so there is no
 * schema on a record to rename. Kafka fails every schemaless record this transformation sees
 * ("Schema required for [updating schema metadata]"); Omnibus refuses the config instead, so
 * that a copied Kafka config does not fail each message once it runs.
 */
import { ConfigSpec } from '@omnibus/sdk';
import { keyValuePair } from './define.ts';
import { KAFKA_TRANSFORMS, TransformError } from './record.ts';

export const SCHEMALESS_PROBLEM =
  'SetSchemaMetadata sets the name and version of a record schema; Omnibus records are schemaless JSON (a topic\'s JSON Schema is set on the topic), so it has nothing to set: remove this transformation';

export const SetSchemaMetadata = keyValuePair({
  packageName: KAFKA_TRANSFORMS,
  simpleName: 'SetSchemaMetadata',
  description: 'Sets the schema name and version of the record key or value. Not applicable to Omnibus\'s schemaless records: a config using it is refused',
  config: ConfigSpec.builder()
    .string('schema.name', { documentation: 'Schema name to set.', optional: true })
    .int('schema.version', { documentation: 'Schema version to set.', optional: true })
    .boolean('replace.null.with.default', { documentation: 'Whether to replace fields that have a default value and that are null to the default value.', default: true }),
  validate: () => ({ 'schema.name': [SCHEMALESS_PROBLEM] }),
  create() {
    return {
      apply() {
        throw new TransformError('Schema required for [updating schema metadata]');
      },
    };
  },
});
