/**
 * A third-party transformation and predicate: written against @omnibus/sdk only, declared in
 * package.json ("omnibus": {"transforms": [...], "predicates": [...]}) and found by a worker
 * through plugin.path, like the connector.
 *
 *   transforms=greet
 *   transforms.greet.type=hello-connector.Greet
 *   transforms.greet.field=name
 *   transforms.greet.predicate=named
 *   predicates=named
 *   predicates.named.type=hello-connector.HasName
 */
import { ConfigSpec, definePredicate, defineTransformation, PermanentError, validators } from '@omnibus/sdk';

/** Puts a greeting in front of one string field of the value. */
export const Greet = defineTransformation({
  className: 'hello-connector.Greet',
  aliases: ['Greet'],
  version: '0.1.0',
  description: 'Puts a greeting in front of one string field of the record value.',
  config: ConfigSpec.builder()
    .string('field', { documentation: 'The value field to greet.', validator: validators.nonEmptyString() })
    .string('greeting', { documentation: 'The words put in front of it.', default: 'Hello,' }),
  create: ({ field, greeting }) => ({
    apply(record) {
      const value = record.value;
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new PermanentError('HELLO_ERR_NOT_AN_OBJECT', 'Greet needs an object value');
      }
      const current = (value as Record<string, unknown>)[field];
      if (typeof current !== 'string') return record;
      return { ...record, value: { ...value, [field]: `${greeting} ${current}` } };
    },
  }),
});

/** True when the value has a non-empty `name`. */
export const HasName = definePredicate({
  className: 'hello-connector.HasName',
  version: '0.1.0',
  description: 'True for records whose value has a non-empty string name.',
  config: ConfigSpec.builder(),
  create: () => ({
    test: (record) => {
      const value = record.value as { name?: unknown } | null;
      return typeof value?.name === 'string' && value.name !== '';
    },
  }),
});
