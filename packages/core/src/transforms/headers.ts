/**
 * Kafka's header transformations. Omnibus headers are strings: a value copied from a field is
 * kept as is when it is a string and as its JSON otherwise; a field the record lacks gives no
 * header.
 */
import { ConfigSpec, validators } from '@omnibus/sdk';
import { keyValuePair, single } from './define.ts';
import { headerText, KAFKA_TRANSFORMS, operand, requireMapOrNull, withOperand } from './record.ts';

export const InsertHeader = single({
  className: `${KAFKA_TRANSFORMS}.InsertHeader`,
  aliases: ['InsertHeader'],
  description: 'Adds a header with a literal value to each record.',
  config: ConfigSpec.builder()
    .string('header', { documentation: 'The name of the header.', validator: validators.nonEmptyString() })
    .string('value.literal', { documentation: 'The literal value that is to be set as the header value on all records.' }),
  create(config) {
    const name = config.header;
    const value = config['value.literal'];
    return { apply: (record) => ({ ...record, headers: { ...record.headers, [name]: value } }) };
  },
});

export const DropHeaders = single({
  className: `${KAFKA_TRANSFORMS}.DropHeaders`,
  aliases: ['DropHeaders'],
  description: 'Removes one or more headers from each record.',
  config: ConfigSpec.builder().list('headers', { documentation: 'The name of the headers to be removed.', validator: validators.nonEmptyList() }),
  create({ headers }) {
    const dropped = new Set(headers);
    return {
      apply(record) {
        if (!Object.keys(record.headers).some((name) => dropped.has(name))) return record;
        return { ...record, headers: Object.fromEntries(Object.entries(record.headers).filter(([name]) => !dropped.has(name))) };
      },
    };
  },
});

const headerFromSpec = ConfigSpec.builder()
  .list('fields', { documentation: 'Field names in the record whose values are to be copied or moved to headers.', validator: validators.nonEmptyList() })
  .list('headers', { documentation: 'Header names, in the same order as the field names listed in the fields configuration property.', validator: validators.nonEmptyList() })
  .string('operation', {
    documentation: 'Either move if the fields are to be moved to the headers (removed from the key/value), or copy if the fields are to be copied to the headers (retained in the key/value).',
    validator: validators.oneOf('move', 'copy'),
    recommended: ['move', 'copy'],
  });

export const HeaderFrom = keyValuePair({
  packageName: KAFKA_TRANSFORMS,
  simpleName: 'HeaderFrom',
  description: 'Moves or copies fields in the key or value of a record into that record\'s headers',
  config: headerFromSpec,
  validate: (config): Record<string, string[]> =>
    config.fields.length === config.headers.length ? {} : { headers: ["'fields' config must have the same number of elements as 'headers' config."] },
  create(config, side) {
    const pairs = config.fields.map((field, i) => [field, config.headers[i]!] as const);
    const move = config.operation === 'move';
    return {
      apply(record) {
        const map = requireMapOrNull(operand(record, side), 'header ' + config.operation);
        if (map === null) return record;
        const headers = { ...record.headers };
        const updated = move ? { ...map } : map;
        for (const [field, header] of pairs) {
          if (!Object.prototype.hasOwnProperty.call(map, field)) continue;
          headers[header] = headerText(map[field]);
          if (move) delete updated[field];
        }
        return withOperand({ ...record, headers }, side, updated);
      },
    };
  },
});
