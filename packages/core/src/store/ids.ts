/**
 * Message ids: UUID version 7 (RFC 9562 §5.7), time-ordered so that the buffer's (ts, id) order
 * is the produce order. Within one millisecond the 12-bit `rand_a` field is a counter (the
 * RFC's "fixed bit-length dedicated counter", method 1), so ids of one process never go back.
 * Of the 62 bits of `rand_b`, the last 16 carry the message's shard when the producer gives it,
 * and the other 46 are random: the id then says where its message sits in the buffer (its
 * millisecond and shard; the topic is one of few), and a store can find it without an index row
 * (see `impliedPosition`). Random bytes are drawn a pool at a time: an id costs a few buffer
 * writes, not a call into the crypto library.
 *
 * The 36 characters are written into one reused buffer and read out as a single string: built
 * by concatenation, an id left a chain of 19 intermediate strings behind (about 600 bytes of
 * garbage per message produced, over a quarter of what the produce path allocated).
 */
import { randomFillSync } from 'node:crypto';

const POOL_IDS = 512;
const UUID_LENGTH = 36;
const DASH = 0x2d;
/** The two lowercase hex digits of every byte, as character codes: HEX_DIGITS[2b], HEX_DIGITS[2b + 1]. */
const HEX_DIGITS = Uint8Array.from(Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0')).join(''), (c) => c.charCodeAt(0));

export class UuidV7Generator {
  private readonly pool = Buffer.allocUnsafe(POOL_IDS * 8);
  private used = POOL_IDS;
  private lastMs = -1;
  private counter = 0;
  private readonly text = Buffer.alloc(UUID_LENGTH);

  /** The next id at `now` (or just after: never before the previous one); `shard` (0–65535) goes into its last 16 bits. */
  next(now = Date.now(), shard?: number): string {
    let ms = now;
    if (ms > this.lastMs) {
      this.lastMs = ms;
      this.counter = 0;
    } else {
      // Same millisecond (or the clock went back): count up, borrowing the next millisecond when the counter is spent.
      ms = this.lastMs;
      this.counter += 1;
      if (this.counter > 0xfff) {
        this.lastMs = ms = this.lastMs + 1;
        this.counter = 0;
      }
    }
    if (this.used === POOL_IDS) {
      randomFillSync(this.pool);
      this.used = 0;
    }
    const r = this.used * 8;
    this.used += 1;
    const p = this.pool;
    const high = Math.floor(ms / 0x10000); // top 32 of the 48 timestamp bits
    const low = ms & 0xffff;
    this.hex(0, high >>> 24);
    this.hex(2, high >>> 16);
    this.hex(4, high >>> 8);
    this.hex(6, high);
    this.text[8] = DASH;
    this.hex(9, low >>> 8);
    this.hex(11, low);
    this.text[13] = DASH;
    this.hex(14, 0x70 | (this.counter >>> 8));
    this.hex(16, this.counter);
    this.text[18] = DASH;
    this.hex(19, 0x80 | (p[r]! & 0x3f));
    this.hex(21, p[r + 1]!);
    this.text[23] = DASH;
    for (let i = 2; i < 6; i++) this.hex(20 + 2 * i, p[r + i]!);
    this.hex(32, shard === undefined ? p[r + 6]! : shard >>> 8);
    this.hex(34, shard === undefined ? p[r + 7]! : shard);
    return this.text.toString('latin1', 0, UUID_LENGTH);
  }

  /** Writes the low byte of `byte` as two hex digits at `at`. */
  private hex(at: number, byte: number): void {
    const digits = (byte & 0xff) << 1;
    this.text[at] = HEX_DIGITS[digits]!;
    this.text[at + 1] = HEX_DIGITS[digits + 1]!;
  }
}

/** Where an id made by `UuidV7Generator.next(ts, shard)` says its message is. */
export interface ImpliedPosition {
  /** The id's millisecond: the message's `createdAt`, if it was made at its produce time. */
  ts: number;
  /** The last 16 bits: the message's shard, if its producer put it there. */
  shard: number;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * The buffer time and shard an id would imply, for any lowercase UUIDv7 (undefined otherwise).
 * A claim to check, not a fact: a supplied id, or one whose millisecond was moved on (a spent
 * counter, per-key ordering), implies a position its message is not at. A store may leave a
 * message out of its id index only when its actual position is the implied one.
 */
export function impliedPosition(id: string): ImpliedPosition | undefined {
  if (id.length !== UUID_LENGTH || !UUID_V7.test(id)) return undefined;
  return { ts: parseInt(id.slice(0, 8), 16) * 0x10000 + parseInt(id.slice(9, 13), 16), shard: parseInt(id.slice(32, 36), 16) };
}

/**
 * Whether the message's id says where it is: made by the producer at the message's time for its
 * shard. Such a message is found by its id alone, and the stores write no id index row for it:
 * on LMDB that row was a fourth of the rows a delivered message cost; on CQL it cost 17–42 %
 * of the node's CPU per produced message (four paired runs), and all of a produce's index
 * writes went to the few partitions of one 10-second slot.
 */
export function positionImplied(message: { id: string; shard: number; createdAt: number }): boolean {
  const implied = impliedPosition(message.id);
  return implied !== undefined && implied.ts === message.createdAt && implied.shard === message.shard;
}
