// Our token() against the real thing: Cassandra's own token() of thousands of partition keys.
import cassandra from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { compositeToken, tokenString } from '../src/bus/token.ts';

/** A seeded generator (mulberry32), so a failing key reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ASCII = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+@.-_ ~';
const MULTI_BYTE = ['é', 'ü', 'ß', 'ñ', 'Ω', 'ж', '€', '中', '文', 'ﬁ', '\u0080', '\u07ff', '\u0800', '\uffee'];
const EMOJI = ['😀', '🚀', '👍🏽', '🇫🇷', '𝄞', '🧑‍💻'];

function randomKeys(count: number, seed: number): string[] {
  const next = random(seed);
  const pick = (chars: readonly string[] | string) => chars[Math.floor(next() * chars.length)]!;
  const keys = new Set<string>();
  while (keys.size < count) {
    const kind = keys.size % 8;
    const length = kind === 7 ? 5_000 + Math.floor(next() * 5_000) : 1 + Math.floor(next() * 40);
    let key = '';
    for (let i = 0; i < length && key.length < length; i++) {
      if (kind === 0) key += pick(ASCII);
      else if (kind === 1) key += pick(MULTI_BYTE);
      else if (kind === 2) key += pick(EMOJI);
      else key += next() < 0.5 ? pick(ASCII) : next() < 0.6 ? pick(MULTI_BYTE) : pick(EMOJI);
    }
    keys.add(key);
  }
  return [...keys];
}

/** Every row of a query, page by page. */
async function* allRows(client: cassandra.Client, query: string): AsyncGenerator<cassandra.types.Row> {
  let pageState: string | undefined;
  do {
    const page = await client.execute(query, [], { prepare: true, fetchSize: 500, pageState });
    yield* page.rows;
    pageState = page.pageState ?? undefined;
  } while (pageState);
}

function int32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, n);
  return out;
}

describe('token() agrees with Cassandra', () => {
  let ks: FreshKeyspace;

  beforeAll(async () => {
    ks = await freshKeyspace('token');
    await ks.client.execute(`CREATE TABLE ${ks.keyspace}.single (k text PRIMARY KEY)`);
    await ks.client.execute(`CREATE TABLE ${ks.keyspace}.composite (k text, n int, PRIMARY KEY ((k, n)))`);
  });
  afterAll(async () => {
    await ks?.drop();
  });

  it('for thousands of text partition keys: ASCII, multi-byte, emoji, 5-10 KB long, mixed', async () => {
    const keys = randomKeys(2_400, 1);
    await cassandra.concurrent.executeConcurrent(ks.client, `INSERT INTO ${ks.keyspace}.single (k) VALUES (?)`, keys.map((k) => [k]), {
      concurrencyLevel: 64,
    });
    let compared = 0;
    const mismatches: Array<{ key: string; cassandra: string; ours: string }> = [];
    for await (const row of allRows(ks.client, `SELECT token(k) AS t, k FROM ${ks.keyspace}.single`)) {
      const { t, k } = row as unknown as { t: cassandra.types.Long; k: string };
      const ours = tokenString(k);
      if (ours !== t.toString()) mismatches.push({ key: k.slice(0, 80), cassandra: t.toString(), ours });
      compared++;
    }
    expect(compared).toBe(keys.length);
    expect(mismatches).toEqual([]);
    // The run must really have covered long keys and keys whose tail holds bytes >= 0x80.
    expect(keys.filter((k) => k.length >= 5_000).length).toBeGreaterThan(250);
    expect(keys.filter((k) => Buffer.from(k).at(-1)! >= 0x80).length).toBeGreaterThan(600);
  });

  it('for thousands of composite (text, int) partition keys', async () => {
    const next = random(2);
    const keys = randomKeys(1_600, 3).map((k) => ({ k, n: Math.floor(next() * 2 ** 32) - 2 ** 31 }));
    await cassandra.concurrent.executeConcurrent(
      ks.client,
      `INSERT INTO ${ks.keyspace}.composite (k, n) VALUES (?, ?)`,
      keys.map(({ k, n }) => [k, n]),
      { concurrencyLevel: 64 },
    );
    let compared = 0;
    const mismatches: Array<{ key: string; n: number; cassandra: string; ours: string }> = [];
    for await (const row of allRows(ks.client, `SELECT token(k, n) AS t, k, n FROM ${ks.keyspace}.composite`)) {
      const { t, k, n } = row as unknown as { t: cassandra.types.Long; k: string; n: number };
      const ours = compositeToken([Buffer.from(k, 'utf8'), int32(n)]).toString();
      if (ours !== t.toString()) mismatches.push({ key: k.slice(0, 80), n, cassandra: t.toString(), ours });
      compared++;
    }
    expect(compared).toBe(keys.length);
    expect(mismatches).toEqual([]);
  });
});
