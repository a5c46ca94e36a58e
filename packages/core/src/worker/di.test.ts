// The worker's container chooses the consumers' read coalescing by the kind of store it runs on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NETWORKED_STORE_CONSUMER_OPTIONS } from '../bus/consumer.ts';
import { createWorkerContainer, TOKENS } from './di.ts';
import { Metrics } from '../metrics.ts';
import { loadWorkerConfig } from '../runtime/worker-config.ts';
import { CqlStore } from '../store/cql.ts';
import { instrumentStore } from '../store/instrumented.ts';
import { LmdbStore } from '../store/lmdb.ts';
import type { Store } from '../store/port.ts';

const dir = mkdtempSync(join(tmpdir(), 'omnibus-di-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function consumerOptionsOn(store: Store) {
  const container = createWorkerContainer(loadWorkerConfig({}, { env: {} }));
  // As the worker registers it: wrapped for its metrics (the wrapper keeps the store's class).
  container.register(TOKENS.store, { useValue: instrumentStore(store, new Metrics({ defaultMetrics: false })) });
  return container.resolve(TOKENS.consumerOptions);
}

describe('worker container', () => {
  it('coalesces reads more on a networked store than on the embedded one', () => {
    // Neither store is opened: the choice depends on its kind alone.
    expect(consumerOptionsOn(new CqlStore('cql://127.0.0.1:9042/ks?dc=datacenter1'))).toEqual(NETWORKED_STORE_CONSUMER_OPTIONS);
    expect(consumerOptionsOn(new LmdbStore(join(dir, 'data')))).toEqual({});
  });
});
