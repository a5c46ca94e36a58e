// The development SMSC's per-bind rate cap (`bindRatePerSecond`), as an SMSC enforces a
// contracted throughput per bind: each bind's submits are answered no faster than the cap,
// whatever its window, while another bind is answered at its own pace beside it. Two SmsSink
// tasks (two binds) send at once over real TCP sessions.
import { startSink, type SinkHarness } from '@omnibus/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { startSmscDevServer, type SmscDevServer } from '../src/dev-server.ts';
import { SmsSink } from '../src/index.ts';

const RATE = 40;
const PER_BIND = 60;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function task(smsc: SmscDevServer, taskId: number): Promise<SinkHarness> {
  const sink = await startSink(
    SmsSink,
    {
      topics: 'sms',
      'sms.transport': 'smpp',
      'sms.from': 'Omnibus',
      'smpp.host': smsc.host,
      'smpp.port': String(smsc.port),
      'smpp.system.id': 'omnibus',
      'smpp.password': 'pw',
      'smpp.request.timeout.ms': '30000',
    },
    { taskId },
  );
  cleanups.push(() => sink.stop());
  return sink;
}

describe('the development SMSC capped per bind', () => {
  it('answers each bind at most bindRatePerSecond submits a second, each bind at its own pace, every message once', async () => {
    const smsc = await startSmscDevServer({ bindRatePerSecond: RATE });
    cleanups.push(() => smsc.close());
    const sinks = [await task(smsc, 0), await task(smsc, 1)];
    const batch = (bind: number) =>
      Array.from({ length: PER_BIND }, (_, i) => ({ key: `+3361000${bind}${String(i).padStart(3, '0')}`, value: { to: `+3361000${bind}${String(i).padStart(3, '0')}`, text: `bind ${bind} message ${i}` } }));
    const outcomes = await Promise.all(sinks.map((sink, bind) => sink.send(batch(bind), { maxWaitMs: 60_000 })));
    for (const list of outcomes) expect(list.map((o) => o.outcome.status)).toEqual(new Array(PER_BIND).fill('sent'));
    expect(smsc.messages).toHaveLength(2 * PER_BIND);
    expect(smsc.duplicates()).toEqual([]);

    const byBind = new Map<number, number[]>();
    for (const submit of smsc.submits) byBind.set(submit.connection, [...(byBind.get(submit.connection) ?? []), submit.answeredAt!]);
    expect([...byBind.values()].map((times) => times.length)).toEqual([PER_BIND, PER_BIND]);
    // The client kept several submits outstanding, so the cap, not its window, set the pace.
    expect(smsc.maxOutstanding).toBeGreaterThan(2);
    for (const times of byBind.values()) {
      const sorted = [...times].sort((a, b) => a - b);
      // No second of a bind holds more answers than the cap: with 60 submits at 40 a second, the last came a second after the 20th or later.
      for (const start of sorted) expect(sorted.filter((t) => t >= start && t < start + 1000).length).toBeLessThanOrEqual(RATE);
      expect(sorted[PER_BIND - 1]! - sorted[PER_BIND - 1 - RATE]!).toBeGreaterThanOrEqual(1000);
    }
    // The two binds ran side by side: answers of one came while the other's were still being paced.
    const [first, second] = [...byBind.values()].map((times) => [Math.min(...times), Math.max(...times)] as const);
    expect(first![0]).toBeLessThan(second![1]);
    expect(second![0]).toBeLessThan(first![1]);
  }, 60_000);
});
