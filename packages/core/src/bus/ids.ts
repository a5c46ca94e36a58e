/**
 * Message ids: UUID version 7 (RFC 9562 §5.7), time-ordered so that the buffer's (ts, id) order
 * is the produce order. Within one millisecond the 12-bit `rand_a` field is a counter (the
 * RFC's "fixed bit-length dedicated counter", method 1), so ids of one process never go back;
 * the 62 bits of `rand_b` are random. Random bytes are drawn a pool at a time: an id costs a
 * few string concatenations, not a call into the crypto library.
 */
import { randomFillSync } from 'node:crypto';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL_IDS = 512;

export class UuidV7Generator {
  private readonly pool = Buffer.allocUnsafe(POOL_IDS * 8);
  private used = POOL_IDS;
  private lastMs = -1;
  private counter = 0;

  next(now = Date.now()): string {
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
    return (
      HEX[(high >>> 24) & 0xff]! +
      HEX[(high >>> 16) & 0xff]! +
      HEX[(high >>> 8) & 0xff]! +
      HEX[high & 0xff]! +
      '-' +
      HEX[low >>> 8]! +
      HEX[low & 0xff]! +
      '-' +
      HEX[0x70 | (this.counter >>> 8)]! +
      HEX[this.counter & 0xff]! +
      '-' +
      HEX[0x80 | (p[r]! & 0x3f)]! +
      HEX[p[r + 1]!]! +
      '-' +
      HEX[p[r + 2]!]! +
      HEX[p[r + 3]!]! +
      HEX[p[r + 4]!]! +
      HEX[p[r + 5]!]! +
      HEX[p[r + 6]!]! +
      HEX[p[r + 7]!]!
    );
  }
}
