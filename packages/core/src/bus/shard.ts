/**
 * ScyllaDB's `biased-token-round-robin` sharding: which of `nrShards` shards owns a token.
 *
 *   biased = (token + 2^63) mod 2^64          (unsigned: the token range, shifted to start at 0)
 *   biased = (biased << ignoreMsb) mod 2^64
 *   shard  = (biased * nrShards) >> 64        (high word of the 128-bit product)
 *
 * The fast path computes the 128-bit product's high word from 32-bit halves, the form
 * ScyllaDB documents for languages without 128-bit integers; doubles stay exact while
 * nrShards < 2^21, and larger counts fall back to BigInt.
 */
import { halvesToString, tokenHalves } from './token.ts';

const TWO_POW_32 = 4294967296;
const FAST_PATH_LIMIT = 1 << 21;
const MAX_SHARDS = 0x7fffffff;

function checkArguments(nrShards: number, ignoreMsb: number): void {
  if (!Number.isInteger(nrShards) || nrShards < 1 || nrShards > MAX_SHARDS) {
    throw new RangeError(`nrShards must be an integer from 1 to ${MAX_SHARDS}, got ${nrShards}`);
  }
  if (!Number.isInteger(ignoreMsb) || ignoreMsb < 0 || ignoreMsb > 63) {
    throw new RangeError(`ignoreMsb must be an integer from 0 to 63, got ${ignoreMsb}`);
  }
}

/** The shard of a token given as signed int32 halves [high, low]; arguments already checked. */
function shardOfHalves(high: number, low: number, nrShards: number, ignoreMsb: number): number {
  if (nrShards >= FAST_PATH_LIMIT) {
    const token = (BigInt(high | 0) << 32n) + BigInt(low >>> 0);
    return shardOfBigint(token, nrShards, ignoreMsb);
  }
  high = (high ^ 0x80000000) >>> 0; // + 2^63 (mod 2^64) flips the top bit
  low >>>= 0;
  if (ignoreMsb >= 32) {
    high = (low << (ignoreMsb - 32)) >>> 0;
    low = 0;
  } else if (ignoreMsb > 0) {
    high = ((high << ignoreMsb) | (low >>> (32 - ignoreMsb))) >>> 0;
    low = (low << ignoreMsb) >>> 0;
  }
  const sum = Math.floor((low * nrShards) / TWO_POW_32) + high * nrShards;
  return Math.floor(sum / TWO_POW_32);
}

function shardOfBigint(token: bigint, nrShards: number, ignoreMsb: number): number {
  let biased = BigInt.asUintN(64, token + 2n ** 63n);
  biased = BigInt.asUintN(64, biased << BigInt(ignoreMsb));
  return Number((biased * BigInt(nrShards)) >> 64n);
}

/** The shard (0 ≤ shard < nrShards) that owns `token` under biased-token-round-robin. */
export function shardOf(token: bigint, nrShards: number, ignoreMsb = 0): number {
  checkArguments(nrShards, ignoreMsb);
  if (token < -(2n ** 63n) || token >= 2n ** 63n) throw new RangeError(`token ${token} is not a signed 64-bit integer`);
  const high = Number(BigInt.asIntN(32, token >> 32n));
  const low = Number(BigInt.asUintN(32, token));
  return shardOfHalves(high, low, nrShards, ignoreMsb);
}

export interface Route {
  /** Cassandra's token of the key, as a decimal string. */
  token: string;
  shard: number;
}

const halves = new Int32Array(2);

/** Token and shard of a routing key in one pass, without BigInt: what the ingest path needs per message. */
export function routeKey(key: string | Uint8Array, nrShards: number, ignoreMsb = 0): Route {
  checkArguments(nrShards, ignoreMsb);
  tokenHalves(key, halves);
  const high = halves[0]!;
  const low = halves[1]!;
  return { token: halvesToString(high, low), shard: shardOfHalves(high, low, nrShards, ignoreMsb) };
}
