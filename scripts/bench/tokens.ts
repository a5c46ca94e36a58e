/**
 * Routing speed: Cassandra's Murmur3 token of a key (`token()`, a BigInt, as a client would
 * compare it with the database's), the shard of a token (`shardOf()`), and both at once
 * without BigInt (`routeKey()`, what the write path calls per message).
 */
import { routeKey, shardOf } from '../../packages/core/src/bus/shard.ts';
import { token } from '../../packages/core/src/bus/token.ts';
import { RECIPIENTS } from './workload.ts';

export interface TokenFigures {
  tokensPerSec: number;
  shardsPerSec: number;
  routesPerSec: number;
}

/** Calls per second of `fn` over `items`, repeated until at least `minMs` have passed (after a warm-up). */
function rate<T>(items: readonly T[], fn: (item: T) => unknown, minMs = 1000): number {
  let sink = 0;
  const pass = () => {
    for (const item of items) if (fn(item) !== undefined) sink++;
  };
  pass();
  let calls = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    pass();
    calls += items.length;
    elapsed = performance.now() - started;
  } while (elapsed < minMs);
  if (sink < 0) throw new Error('unreachable');
  return calls / (elapsed / 1000);
}

export function benchTokens(): TokenFigures {
  const keys = Array.from({ length: RECIPIENTS }, (_, i) => `user-${i}@example.org`);
  const tokens = keys.map((key) => token(key));
  return {
    tokensPerSec: rate(keys, (key) => token(key)),
    shardsPerSec: rate(tokens, (t) => shardOf(t, 16)),
    routesPerSec: rate(keys, (key) => routeKey(key, 16)),
  };
}
