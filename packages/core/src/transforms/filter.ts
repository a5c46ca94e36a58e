/** Kafka's Filter: drops every record it is applied to; meant to be used with a predicate. */
import { ConfigSpec } from '@omnibus/sdk';
import { single } from './define.ts';
import { KAFKA_TRANSFORMS } from './record.ts';

export const Filter = single({
  className: `${KAFKA_TRANSFORMS}.Filter`,
  aliases: ['Filter'],
  description: 'Drops all records, filtering them from subsequent transformations in the chain. Intended to be used conditionally, with a predicate.',
  config: ConfigSpec.builder(),
  create: () => ({ apply: () => null }),
});
