/**
 * Asks a node how it shards: one CQL OPTIONS request on a connection of our own. ScyllaDB
 * answers SUPPORTED with SCYLLA_NR_SHARDS and SCYLLA_SHARDING_IGNORE_MSB (its
 * protocol-extensions.md); Cassandra answers without them. cassandra-driver sends OPTIONS too
 * but keeps the answer to itself, hence this small exchange (it needs no authentication: it
 * happens before STARTUP).
 */
import { connect } from 'node:net';

export interface ClusterSharding {
  nrShards: number;
  ignoreMsb: number;
}

const PROTOCOL_V4 = 0x04;
const OPCODE_OPTIONS = 0x05;
const OPCODE_SUPPORTED = 0x06;
const HEADER_BYTES = 9;

/** The SUPPORTED body: a [string multimap] = [short n] n × ([string] [string list]). */
function readStringMultimap(body: Buffer): Map<string, string[]> {
  let offset = 0;
  const readShort = (): number => {
    const value = body.readUInt16BE(offset);
    offset += 2;
    return value;
  };
  const readString = (): string => {
    const length = readShort();
    const text = body.toString('utf8', offset, offset + length);
    offset += length;
    return text;
  };
  const entries = new Map<string, string[]>();
  for (let n = readShort(); n > 0; n--) {
    const key = readString();
    const values: string[] = [];
    for (let m = readShort(); m > 0; m--) values.push(readString());
    entries.set(key, values);
  }
  return entries;
}

/** The node's SUPPORTED options, or an error if it does not answer within `timeoutMs`. */
export function fetchSupportedOptions(host: string, port: number, timeoutMs = 3_000): Promise<Map<string, string[]>> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let received = Buffer.alloc(0);
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer to OPTIONS from ${host}:${port} within ${timeoutMs} ms`)));
    socket.on('error', fail);
    socket.on('connect', () => {
      const frame = Buffer.alloc(HEADER_BYTES);
      frame.writeUInt8(PROTOCOL_V4, 0);
      frame.writeUInt8(OPCODE_OPTIONS, 4);
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < HEADER_BYTES) return;
      const length = received.readUInt32BE(5);
      if (received.length < HEADER_BYTES + length) return;
      socket.destroy();
      const opcode = received.readUInt8(4);
      if (opcode !== OPCODE_SUPPORTED) {
        reject(new Error(`${host}:${port} answered OPTIONS with opcode 0x${opcode.toString(16)}, not SUPPORTED`));
        return;
      }
      try {
        resolve(readStringMultimap(received.subarray(HEADER_BYTES, HEADER_BYTES + length)));
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

/** ScyllaDB's shard count and ignore_msb, from a SUPPORTED answer; undefined for Cassandra. */
export function shardingFromSupported(supported: Map<string, string[]>): ClusterSharding | undefined {
  const nrShards = Number(supported.get('SCYLLA_NR_SHARDS')?.[0]);
  const ignoreMsb = Number(supported.get('SCYLLA_SHARDING_IGNORE_MSB')?.[0]);
  if (!Number.isInteger(nrShards) || nrShards < 1 || !Number.isInteger(ignoreMsb)) return undefined;
  return { nrShards, ignoreMsb };
}
