/**
 * `node --import tsx scripts/bench/transform-chain.ts [--messages N]`: the CPU cost per message
 * of a three-stage transformation chain on a sink (content routing with ValueFieldMatches and
 * Filter, InsertField, ReplaceField), as the sink runner applies it, against the same records
 * with no chain. A script, not a test: it prints figures and asserts nothing about time.
 */
import { parseArgs } from 'node:util';
import type { SinkRecord } from '../../packages/sdk/src/index.ts';
import { sinkRecordThrough } from '../../packages/core/src/transforms/bus-records.ts';
import { BUILTIN_CATALOG } from '../../packages/core/src/transforms/catalog.ts';
import { buildChain } from '../../packages/core/src/transforms/chain.ts';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '200000' } } });
const messages = Number(values.messages);

const chain = buildChain(
  {
    transforms: 'route,stamp,trim',
    'transforms.route.type': 'Filter',
    'transforms.route.predicate': 'isUk',
    'transforms.route.negate': 'true',
    'transforms.stamp.type': 'InsertField$Value',
    'transforms.stamp.topic.field': 'topic',
    'transforms.stamp.timestamp.field': 'ts',
    'transforms.trim.type': 'ReplaceField$Value',
    'transforms.trim.exclude': 'internal',
    predicates: 'isUk',
    'predicates.isUk.type': 'io.omnibus.predicates.ValueFieldMatches',
    'predicates.isUk.field': 'to',
    'predicates.isUk.pattern': '\\+44.*',
  },
  BUILTIN_CATALOG,
);

const records: SinkRecord[] = Array.from({ length: 1000 }, (_, n) => ({
  id: `m-${n}`,
  topic: 'sms',
  key: `k${n}`,
  shard: n % 16,
  value: { to: n % 2 === 0 ? `+4477009${String(n).padStart(5, '0')}` : `+336123${String(n).padStart(5, '0')}`, text: `Your code is ${n}`, internal: { n } },
  headers: {},
  timestamp: 1_700_000_000_000 + n,
  attempt: 1,
}));

function cpuMicrosPerMessage(run: (record: SinkRecord) => unknown): number {
  const start = process.cpuUsage();
  for (let i = 0; i < messages; i++) run(records[i % records.length]!);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / messages;
}

// Warm up the JIT on both paths before measuring.
cpuMicrosPerMessage((r) => sinkRecordThrough(chain, r));
cpuMicrosPerMessage((r) => ({ ...r }));
const chained = cpuMicrosPerMessage((r) => sinkRecordThrough(chain, r));
const bare = cpuMicrosPerMessage((r) => ({ ...r }));
let passed = 0;
for (const record of records) if (sinkRecordThrough(chain, record) !== null) passed++;
console.log(`three-stage chain (ValueFieldMatches + Filter, InsertField, ReplaceField), ${messages} messages`);
console.log(`  CPU per message: ${chained.toFixed(2)} µs with the chain, ${bare.toFixed(2)} µs copying the record alone`);
console.log(`  records passing the filter: ${passed} of ${records.length}`);
