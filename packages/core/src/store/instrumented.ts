/**
 * Wraps a store so that every operation is timed into the latency histogram and counted.
 * Benchmarks read `queries` to measure what an idle worker costs the store.
 */
import type { Metrics } from '../metrics.ts';
import type { Store } from './port.ts';

export interface CountingStore extends Store {
  /** Store operations issued through this wrapper so far. */
  readonly queries: number;
}

export function instrumentStore(store: Store, metrics: Metrics): CountingStore {
  let queries = 0;
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'queries') return queries;
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || property === 'close' || property === 'init') return value;
      const operation = String(property);
      return async (...args: unknown[]) => {
        queries += 1;
        const stop = metrics.storeLatency.startTimer({ operation });
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (error) {
          metrics.storeErrors.inc({ operation });
          throw error;
        } finally {
          stop();
        }
      };
    },
  }) as CountingStore;
}
