/**
 * Kafka beside Omnibus on LMDB, measured in the same run: the comparison table of `pnpm bench`
 * and its targets (Omnibus on LMDB at least as fast end to end as Kafka + Connect, and draining a
 * backlog at least half as fast).
 */
import { KAFKA_VARIANTS, type KafkaFigures, type KafkaVariant } from './kafka.ts';
import { fmt, type OmnibusFigures } from './omnibus.ts';

const VARIANTS = Object.keys(KAFKA_VARIANTS) as KafkaVariant[];

const num = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : fmt(n));
const dec = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));
const ratio = (omnibus: number | undefined, kafka: number | undefined) => (omnibus === undefined || kafka === undefined || !(kafka > 0) || !Number.isFinite(omnibus) ? '—' : `${(omnibus / kafka).toFixed(2)}×`);

export function kafkaComparison(kafka: KafkaFigures, lmdb: OmnibusFigures | undefined): { title: string; rows: string[][]; notes: string[] } {
  const header = ['', 'Omnibus LMDB'];
  for (const variant of VARIANTS) header.push(KAFKA_VARIANTS[variant].label, 'Omnibus ÷ it');
  const row = (name: string, omnibus: number | undefined, kafkaFigure: (variant: KafkaVariant) => number, cell: (n: number | undefined) => string = num, comparable = true) => {
    const cells = [name, cell(omnibus)];
    for (const variant of VARIANTS) cells.push(cell(kafkaFigure(variant)), comparable ? ratio(omnibus, kafkaFigure(variant)) : '');
    return cells;
  };
  const figures = (variant: KafkaVariant) => kafka.variants[variant];
  const kafkaCpu = (variant: KafkaVariant) => figures(variant).cpuMicrosPerMessage.e2e.broker + figures(variant).cpuMicrosPerMessage.e2e.connect;
  const rows = [
    header,
    row('produce, msg/s', lmdb?.produceMsgPerSec, (v) => figures(v).produceMsgPerSec),
    row('end to end to a no-op sink, msg/s', lmdb?.e2eMsgPerSec, (v) => figures(v).e2eMsgPerSec),
    row('backlog drain, msg/s', lmdb?.drainMsgPerSec, (v) => figures(v).drainMsgPerSec),
    row('latency produce → hand-off p50, ms', lmdb?.latencyP50Ms, (v) => figures(v).latencyP50Ms, dec),
    row('latency produce → hand-off p99, ms', lmdb?.latencyP99Ms, (v) => figures(v).latencyP99Ms, dec),
    row('  at msg/s (half its own end-to-end peak)', lmdb?.latencyRatePerSec, (v) => figures(v).latencyRatePerSec),
    row('server CPU µs/msg end to end (worker; broker + Connect)', lmdb?.cpuMicrosPerMessage.e2e, kafkaCpu, dec),
    row('  … of it on the worker main thread; in Connect', lmdb?.mainThreadCpuMicrosPerMessage.e2e, (v) => figures(v).cpuMicrosPerMessage.e2e.connect, dec, false),
  ];
  const client = VARIANTS.map((v) => `${KAFKA_VARIANTS[v].label} ${dec(figures(v).cpuMicrosPerMessage.e2e.client)}`).join(', ');
  return {
    title: `Kafka ${kafka.version} (KRaft, one broker, 16 partitions) + Kafka Connect standalone (no-op sink, 2 tasks, JsonConverter) beside Omnibus on LMDB, same run, ${kafka.messages.toLocaleString('en-US')} messages:`,
    rows,
    notes: [
      'Omnibus ÷ it: above 1 Omnibus is faster on the throughput rows, slower on the latency and CPU rows.',
      `Kafka's producer is its Java client (defaults, acks=all; CPU µs/msg end to end: ${client}); Omnibus's, 8 REST clients (not counted in its CPU).`,
      'flush.messages=1: the broker fsyncs each append before acknowledging, as Omnibus does; with the defaults an acknowledgement means the page cache.',
    ],
  };
}

export function kafkaTargets(kafka: KafkaFigures, lmdb: OmnibusFigures | undefined): Array<{ name: string; met: boolean | undefined; figures: string }> {
  const defaults = kafka.variants.defaults;
  const versus = (omnibus: number | undefined, theirs: number, share: number) =>
    omnibus === undefined || !Number.isFinite(omnibus) || !Number.isFinite(theirs) ? undefined : omnibus >= share * theirs;
  return [
    {
      name: 'LMDB end to end ≥ 1.0× Kafka + Connect',
      met: versus(lmdb?.e2eMsgPerSec, defaults.e2eMsgPerSec, 1),
      figures: lmdb ? `${num(lmdb.e2eMsgPerSec)} vs ${num(defaults.e2eMsgPerSec)} msg/s (${ratio(lmdb.e2eMsgPerSec, defaults.e2eMsgPerSec)}; flush.messages=1: ${ratio(lmdb.e2eMsgPerSec, kafka.variants.flushEachMessage.e2eMsgPerSec)})` : '',
    },
    {
      name: 'LMDB backlog drain ≥ 0.5× Kafka + Connect',
      met: versus(lmdb?.drainMsgPerSec, defaults.drainMsgPerSec, 0.5),
      figures: lmdb ? `${num(lmdb.drainMsgPerSec)} vs ${num(defaults.drainMsgPerSec)} msg/s (${ratio(lmdb.drainMsgPerSec, defaults.drainMsgPerSec)})` : '',
    },
  ];
}
