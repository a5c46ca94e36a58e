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
