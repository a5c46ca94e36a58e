/**
 * CDC generations of a vnode keyspace cluster, from ScyllaDB's generation tables:
 *
 *   cdc_generation_timestamps   (key text = 'timestamps', time timestamp DESC, expired timestamp)
 *   cdc_streams_descriptions_v2 (time timestamp, range_end bigint, streams frozen<set<blob>>)
 *
 * A generation is usable once its time is listed in cdc_generation_timestamps: ScyllaDB writes
 * the stream descriptions first, so a partition read before that may be incomplete. It ends
 * where the next generation starts.
 */
import cassandra from 'cassandra-driver';
import { RetriableError } from '@omnibus/sdk';
import { executePrepared } from './prepared.ts';
import { groupStreamsByVnode } from './stream-id.ts';

export interface GenerationStreams {
  startMs: number;
  /** The generation's streams, by vnode index, each list in byte order. */
  vnodes: Map<number, Buffer[]>;
}

export class GenerationTables {
  constructor(
    private readonly client: cassandra.Client,
    private readonly keyspace: string,
  ) {}

  /** scylla-cdc-java reads the generation tables at QUORUM on a cluster, ONE on a single node. */
  private consistency(): number {
    return this.client.hosts.length > 1 ? cassandra.types.consistencies.quorum : cassandra.types.consistencies.one;
  }

  /** Start times (ms) of the known generations, oldest first. */
  async generationStarts(): Promise<number[]> {
    const result = await executePrepared(this.client, `SELECT time FROM "${this.keyspace}".cdc_generation_timestamps WHERE key = 'timestamps'`, [], {
      consistency: this.consistency(),
    });
    return result.rows.map((row) => (row.get('time') as Date).getTime()).sort((a, b) => a - b);
  }

  async streams(startMs: number): Promise<GenerationStreams> {
    const result = await executePrepared(
      this.client,
      `SELECT range_end, streams FROM "${this.keyspace}".cdc_streams_descriptions_v2 WHERE time = ?`,
      [new Date(startMs)],
      { consistency: this.consistency(), fetchSize: 100_000 },
    );
    const ranges = result.rows
      .map((row) => ({ end: BigInt(String(row.get('range_end'))), streams: (row.get('streams') as Buffer[] | null) ?? [] }))
      .sort((a, b) => (a.end < b.end ? -1 : a.end > b.end ? 1 : 0))
      .map((range) => range.streams);
    if (ranges.every((streams) => streams.length === 0)) {
      // Listed but without streams: replication of the generation tables has not caught up
      // (scylla-cdc-java#144). Reading it later is right; reading nothing would lose changes.
      throw new RetriableError(`CDC generation ${new Date(startMs).toISOString()} has no stream description yet`, {
        code: 'OMNI_ERR_CDC_GENERATION_INCOMPLETE',
      });
    }
    return { startMs, vnodes: groupStreamsByVnode(ranges) };
  }
}

/** `stream_state` of system.cdc_streams (cdc::stream_state). */
export const TabletStreamState = { current: 0, closed: 1, opened: 2 } as const;

/**
 * The CDC stream sets of one table of a tablets keyspace, from ScyllaDB's tables (ScyllaDB
 * 2025.4+; scylla-cdc-java and scylla-cdc-go read the same):
 *
 *   system.cdc_timestamps (keyspace_name text, table_name text, timestamp timestamp DESC,
 *                          PRIMARY KEY ((keyspace_name, table_name), timestamp))
 *   system.cdc_streams    (keyspace_name text, table_name text, timestamp timestamp,
 *                          stream_state tinyint, stream_id blob,
 *                          PRIMARY KEY ((keyspace_name, table_name), timestamp, stream_state, stream_id))
 *
 * Each table has its own stream sets: one stream per tablet, a new set whenever tablets split
 * or merge. A set's current streams (stream_state 0) are read; each is a group of its own
 * (the vnode bits of a tablet stream id mean nothing), numbered in byte order.
 */
export class TabletStreamTables {
  constructor(
    private readonly client: cassandra.Client,
    private readonly keyspace: string,
    private readonly table: { keyspace: string; table: string },
  ) {}

  private consistency(): number {
    return this.client.hosts.length > 1 ? cassandra.types.consistencies.quorum : cassandra.types.consistencies.one;
  }

  /** Start times (ms) of the table's stream sets, oldest first; none when the table is not on tablets. */
  async generationStarts(): Promise<number[]> {
    const result = await executePrepared(
      this.client,
      `SELECT timestamp FROM "${this.keyspace}".cdc_timestamps WHERE keyspace_name = ? AND table_name = ?`,
      [this.table.keyspace, this.table.table],
      { consistency: this.consistency() },
    );
    return result.rows.map((row) => (row.get('timestamp') as Date).getTime()).sort((a, b) => a - b);
  }

  async streams(startMs: number): Promise<GenerationStreams> {
    const result = await executePrepared(
      this.client,
      `SELECT stream_id FROM "${this.keyspace}".cdc_streams WHERE keyspace_name = ? AND table_name = ? AND timestamp = ? AND stream_state = ?`,
      [this.table.keyspace, this.table.table, new Date(startMs), TabletStreamState.current],
      { consistency: this.consistency(), fetchSize: 100_000 },
    );
    const streams = result.rows.map((row) => row.get('stream_id') as Buffer).sort(Buffer.compare);
    if (streams.length === 0) {
      throw new RetriableError(`CDC stream set ${new Date(startMs).toISOString()} of ${this.table.keyspace}.${this.table.table} has no streams yet`, {
        code: 'OMNI_ERR_CDC_GENERATION_INCOMPLETE',
      });
    }
    return { startMs, vnodes: new Map(streams.map((stream, index) => [index, [stream]])) };
  }
}

/** What the task reads stream sets through: the cluster's vnode generations, or one tablets table's stream sets. */
export interface StreamSetSource {
  generationStarts(): Promise<number[]>;
  streams(startMs: number): Promise<GenerationStreams>;
}
