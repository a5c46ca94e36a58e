/**
 * The CPU cost per message of a three-stage transformation chain on a sink (content routing
 * with ValueFieldMatches and Filter, InsertField, ReplaceField), as the sink runner applies it,
 * against the same records with no chain. `pnpm bench` runs it (benchTransformChain); alone:
 * `node --conditions=omnibus-source --import tsx scripts/bench/transform-chain.ts [--messages N]`.
 * A script, not a test: it prints figures and asserts nothing about time.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { SinkRecord } from '../../packages/sdk/src/index.ts';
import { sinkRecordThrough } from '../../packages/core/src/transforms/bus-records.ts';
import { BUILTIN_CATALOG } from '../../packages/core/src/transforms/catalog.ts';
import { buildChain } from '../../packages/core/src/transforms/chain.ts';

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

export interface TransformChainFigures {
  messages: number;
  /** µs of CPU per message through the chain, and copying the record alone. */
  chainCpuMicros: number;
  bareCpuMicros: number;
  passed: number;
  of: number;
}

function cpuMicrosPerMessage(messages: number, run: (record: SinkRecord) => unknown): number {
  const start = process.cpuUsage();
  for (let i = 0; i < messages; i++) run(records[i % records.length]!);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / messages;
}

export function benchTransformChain(messages = 200_000): TransformChainFigures {
  // Warm up the JIT on both paths before measuring.
  cpuMicrosPerMessage(messages, (r) => sinkRecordThrough(chain, r));
  cpuMicrosPerMessage(messages, (r) => ({ ...r }));
  const chainCpuMicros = cpuMicrosPerMessage(messages, (r) => sinkRecordThrough(chain, r));
  const bareCpuMicros = cpuMicrosPerMessage(messages, (r) => ({ ...r }));
  let passed = 0;
  for (const record of records) if (sinkRecordThrough(chain, record) !== null) passed++;
  return { messages, chainCpuMicros, bareCpuMicros, passed, of: records.length };
}

export function describeTransformChain(f: TransformChainFigures): string[] {
  return [
    `three-stage chain (ValueFieldMatches + Filter, InsertField, ReplaceField), ${f.messages} messages`,
    `  CPU per message: ${f.chainCpuMicros.toFixed(2)} µs with the chain, ${f.bareCpuMicros.toFixed(2)} µs copying the record alone`,
    `  records passing the filter: ${f.passed} of ${f.of}`,
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { messages: { type: 'string', default: '200000' } } });
  for (const line of describeTransformChain(benchTransformChain(Number(values.messages)))) console.log(line);
}
