/**
 * Kafka's predicates (TopicNameMatches, HasHeaderKey, RecordIsTombstone) and Omnibus's
 * ValueFieldMatches, which routes on content: with a Filter and `negate`, two sinks on one
 * topic split its messages between them (see ValueFieldMatches below).
 */
import { ConfigSpec, definePredicate, validators, type Predicate } from '@omnibus/sdk';
import { VERSION } from '../version.ts';
import { KAFKA_PREDICATES, valueAtPath } from './record.ts';
import { compilePattern, matchesWhole, validPattern } from './regex.ts';

function builtIn<C>(definition: Omit<Predicate<C>, 'type' | 'version'>): Predicate<C> {
  return definePredicate<C>({ ...definition, version: VERSION });
}

export const TopicNameMatches = builtIn({
  className: `${KAFKA_PREDICATES}.TopicNameMatches`,
  aliases: ['TopicNameMatches'],
  description: 'A predicate which is true for records with a topic name that matches the configured regular expression.',
  config: ConfigSpec.builder().string('pattern', {
    documentation: 'A regular expression (RE2 syntax) for matching against the name of a record\'s topic; the whole name must match.',
    validator: { describe: validPattern.describe, check: (v) => validators.nonEmptyString().check(v) ?? validPattern.check(v) },
  }),
  create({ pattern }) {
    const compiled = compilePattern(pattern);
    return { test: (record) => matchesWhole(compiled, record.topic) };
  },
});

export const HasHeaderKey = builtIn({
  className: `${KAFKA_PREDICATES}.HasHeaderKey`,
  aliases: ['HasHeaderKey'],
  description: 'A predicate which is true for records with at least one header with the configured name.',
  config: ConfigSpec.builder().string('name', { documentation: 'The header name.', validator: validators.nonEmptyString() }),
  create({ name }) {
    return { test: (record) => Object.prototype.hasOwnProperty.call(record.headers, name) };
  },
});

export const RecordIsTombstone = builtIn({
  className: `${KAFKA_PREDICATES}.RecordIsTombstone`,
  aliases: ['RecordIsTombstone'],
  description: 'A predicate which is true for records which are tombstones (i.e. have null value).',
  config: ConfigSpec.builder(),
  create: () => ({ test: (record) => record.value === null || record.value === undefined }),
});

/** The text a field value is compared as: strings as they are, numbers and booleans as JSON writes them. */
function comparable(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/**
 * True when the value's field at `field` (a dotted path into nested maps) matches: the whole
 * of it against `pattern` (RE2), or is `equals`, or is one of `in`. Exactly one of the three is
 * given. Numbers and booleans compare as their JSON text; a field that is absent, null, a map
 * or a list never matches (so `negate=true` takes those).
 *
 *   predicates=uk
 *   predicates.uk.type=io.omnibus.predicates.ValueFieldMatches
 *   predicates.uk.field=to
 *   predicates.uk.pattern=\+44.*
 */
export const ValueFieldMatches = builtIn({
  className: 'io.omnibus.predicates.ValueFieldMatches',
  aliases: ['ValueFieldMatches'],
  description: 'A predicate which is true for records whose value has a field (dotted path) that matches a regular expression, equals a string, or is in a list.',
  config: ConfigSpec.builder()
    .string('field', { documentation: 'Dotted path of the field in the record value, e.g. to or recipient.phone.', validator: validators.nonEmptyString() })
    .string('pattern', { documentation: 'A regular expression (RE2 syntax) the whole field value must match.', optional: true, validator: validPattern })
    .string('equals', { documentation: 'The value the field must equal.', optional: true })
    .list('in', { documentation: 'Values the field must be one of (comma-separated).', optional: true }),
  validate(config) {
    const given = (['pattern', 'equals', 'in'] as const).filter((key) => config[key] !== undefined);
    if (given.length === 1) return {};
    const problem = given.length === 0 ? 'One of pattern, equals or in is required' : `Only one of pattern, equals or in may be given (found ${given.join(', ')})`;
    return Object.fromEntries((given.length === 0 ? ['pattern'] : given).map((key) => [key, [problem]]));
  },
  create(config) {
    const path = config.field.split('.');
    const pattern = config.pattern === undefined ? undefined : compilePattern(config.pattern);
    const expected = config.equals;
    const allowed = config.in === undefined ? undefined : new Set(config.in);
    return {
      test(record) {
        const text = comparable(valueAtPath(record.value, path));
        if (text === undefined) return false;
        if (pattern) return matchesWhole(pattern, text);
        if (expected !== undefined) return text === expected;
        return allowed!.has(text);
      },
    };
  },
});
