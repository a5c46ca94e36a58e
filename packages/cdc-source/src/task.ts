/**
 * The source task: reads the CDC log of each configured table, one vnode's streams per query,
 * window after window, generation after generation, and turns every write into change events.
 *
 * Order. A partition key maps to one stream per generation, and a vnode's windows are read
 * one after the other, so the changes of one key come out in write order. A table moves to
 * the next generation only when the current one is finished — closed (the next one is known)
 * and every vnode's window past its end, on every task — so that the changes of a key made
 * before a generation switch are always published before those made after it.
 *
 * Progress. Each record carries the offset of its (keyspace, table, vnode, generation)
 * partition; a write's records move it only once the write's last log row
 * (`cdc$end_of_batch`) is consumed. Windows with no change move it through heartbeat records
 * (Debezium's heartbeats), and a vnode that finished a generation writes a marker, so that
 * every task can see a generation is done, and a restart re-reads nothing needlessly.
 */
import { createHash } from 'node:crypto';
import cassandra from 'cassandra-driver';
import { FatalConnectorError, stableJson, type Logger, type SourceRecord, type SourceTask, type SourceTaskContext } from '@omnibus/sdk';
import { heartbeatTopicFor, TASK_COUNT_KEY, TASK_INDEX_KEY, topicFor, type ScyllaCdcConfig } from './config.ts';
import { changesOfWrite, compareLogRows, envelopeOf, writeIdentity, type LogRow } from './envelope.ts';
import { scyllaFormatEvents, type FormattedEvent } from './formats.ts';
import { GenerationTables, TabletStreamTables, type GenerationStreams, type StreamSetSource } from './generations.ts';
import { executePrepared } from './prepared.ts';
import { isAfterChange, parseSourceOffset, sourceOffset, sourcePartition, type ChangeId, type VnodeOffset } from './offsets.ts';
import type { CqlTableShape } from './schema.ts';
import { maxTimeuuid, minTimeuuid, timeuuidString, timeuuidToMicros } from './timeuuid.ts';
import { nextWindowSize, planWindow, type WindowCursor, type WindowSettings } from './windows.ts';

/** Vnode windows read at once in one poll. */
const READ_CONCURRENCY = 8;
/** The longest a poll waits for a window to become readable before returning nothing. */
const MAX_POLL_WAIT_MS = 2_000;
/** Table metadata is re-read at least this often, besides whenever the log table's columns change. */
const SCHEMA_REFRESH_MS = 60_000;
const RETRY_BASE_MS = 50;
const RETRY_MAX_MS = 30_000;
const LOG_TABLE_SUFFIX = '_scylla_cdc_log';

interface VnodeState {
  vnode: number;
  streams: Buffer[];
  partition: Record<string, string>;
  cursor: WindowCursor;
  /** The last write consumed in the window starting at `cursor.startMs` (after a restart mid-window). */
  changeId: ChangeId | undefined;
  finished: boolean;
  /** The offset last handed to the runtime (data, heartbeat or marker), as stable JSON. */
  lastOffsetJson: string | null;
  lastOffsetAtMs: number;
}

/** The stream sets (generations) a table is read through, as last read. */
interface StreamSets {
  source: StreamSetSource;
  /** Known generation starts, ms, oldest first. */
  starts: number[];
  readAtMs: number;
  cache: Map<number, GenerationStreams>;
  /** `vnodes` (the cluster's generations) or `tablets` (the table's own stream sets). */
  kind: 'vnodes' | 'tablets';
}

interface TableState {
  keyspace: string;
  table: string;
  topic: string;
  /** A short hash of the topic: record ids are unique across tables and connectors. */
  idPrefix: string;
  shape: CqlTableShape;
  /** The log table's columns as the last query returned them: a change means ALTER TABLE. */
  logColumns: string | null;
  shapeReadAtMs: number;
  /** The cluster's generations (vnode keyspaces) or the table's stream sets (tablets keyspaces). */
  sets: StreamSets;
  /** Index into `sets.starts` of the generation being read; -1 before the first. */
  generation: number;
  streams: GenerationStreams | undefined;
  vnodes: VnodeState[];
  /** Poll in which the last finished-generation markers were returned. */
  markersPoll: number;
  lastBarrierCheckMs: number;
}

type Version = { version: string };

export class ScyllaCdcTask implements SourceTask<ScyllaCdcConfig> {
  private client!: cassandra.Client;
  private context!: SourceTaskContext;
  private logger!: Logger;
  private config!: ScyllaCdcConfig;
  private settings!: WindowSettings;
  private vnodeSets!: StreamSets;
  private tables: TableState[] = [];
  private taskIndex = 0;
  private taskCount = 1;
  private pollCount = 0;
  private failures = 0;
  private heartbeatTopic = '';

  constructor(private readonly meta: Version) {}

  async start(config: ScyllaCdcConfig, context: SourceTaskContext): Promise<void> {
    this.config = config;
    this.context = context;
    this.logger = context.logger;
    this.settings = {
      windowMs: config['scylla.query.time.window.size'],
      confidenceMs: config['scylla.confidence.window.size'],
      minimalWaitMs: config['scylla.minimal.wait.for.window.time'],
    };
    this.heartbeatTopic = heartbeatTopicFor(config);
    const extras = config as unknown as Record<string, unknown>;
    this.taskCount = Math.max(1, Number(extras[TASK_COUNT_KEY] ?? 1) || 1);
    this.taskIndex = Math.min(this.taskCount - 1, Math.max(0, Number(extras[TASK_INDEX_KEY] ?? 0) || 0));

    this.client = createClient(config);
    try {
      await this.client.connect();
    } catch (error) {
      await this.client.shutdown().catch(() => undefined);
      throw new FatalConnectorError('OMNI_ERR_CDC_CONNECT', `could not connect to ${config['scylla.cluster.ip.addresses'].join(',')}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.vnodeSets = newStreamSets(new GenerationTables(this.client, config['scylla.cdc.generations.keyspace']), 'vnodes');
    try {
      for (const name of config['scylla.table.names']) {
        const [keyspace, table] = name.split('.') as [string, string];
        const shape = await this.readShape(keyspace, table);
        const logTable = await this.client.metadata.getTable(keyspace, table + LOG_TABLE_SUFFIX);
        if (!logTable) {
          throw new FatalConnectorError(
            'OMNI_ERR_CDC_NOT_ENABLED',
            `table ${name} has no CDC log (${keyspace}.${table}${LOG_TABLE_SUFFIX}); enable CDC with ALTER TABLE ${name} WITH cdc = {'enabled': true}`,
          );
        }
        const topic = topicFor(config['topic.prefix'], keyspace, table);
        const tablets = new TabletStreamTables(this.client, config['scylla.cdc.tablets.keyspace'], { keyspace, table });
        const sets = (await this.usesTablets(keyspace, tablets)) ? newStreamSets(tablets, 'tablets') : this.vnodeSets;
        this.tables.push({
          keyspace,
          table,
          topic,
          idPrefix: createHash('sha256').update(topic).digest('hex').slice(0, 16),
          shape,
          logColumns: null,
          shapeReadAtMs: Date.now(),
          sets,
          generation: -1,
          streams: undefined,
          vnodes: [],
          markersPoll: -1,
          lastBarrierCheckMs: -Infinity,
        });
      }
    } catch (error) {
      await this.client.shutdown().catch(() => undefined);
      throw error;
    }
    this.logger.info(
      { tables: this.tables.map((t) => `${t.keyspace}.${t.table} (${t.sets.kind})`), task: `${this.taskIndex + 1}/${this.taskCount}` },
      'ScyllaDB CDC source task started',
    );
  }

  async poll(signal: AbortSignal): Promise<SourceRecord[]> {
    this.pollCount += 1;
    const deadline = Date.now() + MAX_POLL_WAIT_MS;
    try {
      while (!signal.aborted) {
        const records = await this.step(signal, deadline);
        this.failures = 0;
        if (records.length > 0 || Date.now() >= deadline) return records;
      }
      return [];
    } catch (error) {
      if (error instanceof FatalConnectorError) throw error;
      if (signal.aborted) return [];
      // The cluster may be briefly unreachable or overloaded: nothing moved, so try again later.
      this.failures += 1;
      const waitMs = backoff(this.failures);
      this.logger.warn({ err: error, retryInMs: waitMs, failures: this.failures }, 'reading the CDC log failed; retrying');
      await sleep(waitMs, signal);
      return [];
    }
  }

  async stop(): Promise<void> {
    await this.client?.shutdown().catch(() => undefined);
  }

  // ---- one step -----------------------------------------------------------------------------

  /** Reads what is ready; waits (until `deadline`) for the next window when nothing is. */
  private async step(signal: AbortSignal, deadline: number): Promise<SourceRecord[]> {
    const now = Date.now();
    await this.refreshGenerations(now);
    const out: SourceRecord[] = [];
    // One table's failure must not drop the records (start markers) another one already produced.
    let firstFailure: unknown;
    for (const table of this.tables) {
      try {
        await this.advance(table, now, out);
      } catch (error) {
        if (error instanceof FatalConnectorError) throw error;
        firstFailure ??= error;
      }
    }

    const ready: Array<{ table: TableState; vnode: VnodeState; startMs: number; endMs: number }> = [];
    let nextReadyAt = Infinity;
    for (const table of this.tables) {
      if (!table.streams) continue;
      const endMs = this.generationEnd(table, table.generation);
      for (const vnode of table.vnodes) {
        if (vnode.finished) continue;
        const plan = planWindow(vnode.cursor, endMs, now, this.settings);
        if (plan.kind === 'finished') {
          vnode.finished = true;
          out.push(this.marker(table, vnode, { windowStartMs: vnode.cursor.startMs, windowEndMs: vnode.cursor.startMs }, 'generation-finished'));
          table.markersPoll = this.pollCount;
        } else if (plan.kind === 'wait') {
          nextReadyAt = Math.min(nextReadyAt, plan.readyAtMs);
        } else {
          ready.push({ table, vnode, startMs: plan.startMs, endMs: plan.endMs });
        }
      }
    }

    ready.sort((a, b) => a.startMs - b.startMs);
    const batch = ready.slice(0, READ_CONCURRENCY);
    const reads = await Promise.allSettled(batch.map((w) => this.readWindow(w.table, w.vnode, w.startMs, w.endMs)));
    reads.forEach((result, i) => {
      const w = batch[i]!;
      if (result.status === 'rejected') {
        firstFailure ??= result.reason;
        return;
      }
      out.push(...this.recordsOfWindow(w.table, w.vnode, w.startMs, w.endMs, result.value, Date.now()));
    });
    if (firstFailure !== undefined && out.length === 0) throw firstFailure;
    if (firstFailure !== undefined) this.logger.warn({ err: firstFailure }, 'part of the CDC log could not be read; it is read again');

    out.push(...this.dueHeartbeats(Date.now()));
    if (out.length === 0 && batch.length === 0) {
      const setsDueAt = Math.min(...this.distinctSets().map((sets) => sets.readAtMs)) + this.config['scylla.generation.poll.interval.ms'];
      const waitMs = Math.min(deadline, nextReadyAt, setsDueAt) - Date.now();
      if (waitMs > 0) await sleep(waitMs, signal);
    }
    return out;
  }

  // ---- generations --------------------------------------------------------------------------

  private generationEnd(table: TableState, index: number): number | undefined {
    return table.sets.starts[index + 1];
  }

  /** The stream sets the tables read: the cluster's generations once, each tablets table's own. */
  private distinctSets(): StreamSets[] {
    return [...new Set(this.tables.map((t) => t.sets))];
  }

  private async refreshGenerations(now: number): Promise<void> {
    for (const sets of this.distinctSets()) {
      if (now - sets.readAtMs < this.config['scylla.generation.poll.interval.ms']) continue;
      const listed = await sets.source.generationStarts();
      // Known generations stay known, even once the cluster stops listing them (old stream
      // sets of a tablets table are dropped): tables hold indexes into this list.
      const added = listed.filter((start) => !sets.starts.includes(start));
      if (added.length > 0) {
        if (sets.starts.length > 0) this.logger.info({ kind: sets.kind, generations: added.map((s) => new Date(s).toISOString()) }, 'new CDC generation');
        const readers = this.tables.filter((t) => t.sets === sets && t.generation >= 0);
        const current = readers.map((t) => sets.starts[t.generation]!);
        sets.starts = [...sets.starts, ...added].sort((a, b) => a - b);
        readers.forEach((t, i) => (t.generation = sets.starts.indexOf(current[i]!)));
      }
      sets.readAtMs = now;
    }
  }

  private async streamsOf(sets: StreamSets, index: number): Promise<GenerationStreams> {
    const startMs = sets.starts[index]!;
    let streams = sets.cache.get(startMs);
    if (!streams) {
      streams = await sets.source.streams(startMs);
      sets.cache.set(startMs, streams);
    }
    return streams;
  }

  /**
   * Whether a table is in a tablets keyspace: ScyllaDB lists the keyspace's tablets in
   * system_schema.scylla_keyspaces (as scylla-cdc-go checks), or the table has stream sets of
   * its own. Neither table exists on a cluster without tablets.
   */
  private async usesTablets(keyspace: string, tablets: TabletStreamTables): Promise<boolean> {
    try {
      const result = await this.client.execute('SELECT initial_tablets FROM system_schema.scylla_keyspaces WHERE keyspace_name = ?', [keyspace], { prepare: false });
      const initial = result.first()?.get('initial_tablets') as unknown;
      if (initial !== null && initial !== undefined) return true;
    } catch {
      // Not ScyllaDB, or a version without tablets.
    }
    try {
      return (await tablets.generationStarts()).length > 0;
    } catch {
      return false;
    }
  }

  private ownsVnode(vnode: number): boolean {
    return vnode % this.taskCount === this.taskIndex;
  }

  private partitionOf(table: TableState, generationStartMs: number, vnode: number): Record<string, string> {
    return sourcePartition({ keyspace: table.keyspace, table: table.table, vnode, generationStartMs });
  }

  /** Picks the first generation of a table (on start), or moves it to the next one once finished. */
  private async advance(table: TableState, now: number, out: SourceRecord[]): Promise<void> {
    if (table.sets.starts.length === 0) return;
    if (table.generation < 0) {
      await this.resume(table, now, out);
      return;
    }
    const endMs = this.generationEnd(table, table.generation);
    if (endMs === undefined) return;
    if (!table.vnodes.every((v) => v.finished)) return;
    // Markers go out in one poll and are committed before the next: only then may others rely on them.
    if (table.markersPoll >= this.pollCount) return;
    if (this.taskCount > 1 && !(await this.generationDoneEverywhere(table, now, endMs))) return;
    await this.enter(table, table.generation + 1, null, out);
  }

  /** True once every vnode of the table's generation, on every task, has passed its end. */
  private async generationDoneEverywhere(table: TableState, now: number, endMs: number): Promise<boolean> {
    if (now - table.lastBarrierCheckMs < Math.min(1_000, this.config['scylla.generation.poll.interval.ms'])) return false;
    table.lastBarrierCheckMs = now;
    const streams = table.streams!;
    const partitions = [...streams.vnodes.keys()].map((v) => this.partitionOf(table, streams.startMs, v));
    const stored = await this.context.offsets(partitions);
    return stored.every((offset) => {
      const parsed = parseSourceOffset(offset);
      return parsed !== null && parsed.windowStartMs >= endMs;
    });
  }

  /**
   * Where a table starts: the newest generation that has stored offsets (older ones were
   * finished before it was entered), or, with none, the cold-start point.
   */
  private async resume(table: TableState, now: number, out: SourceRecord[]): Promise<void> {
    const starts = table.sets.starts;
    for (let index = starts.length - 1; index >= 0; index--) {
      const streams = await this.streamsOf(table.sets, index);
      const partitions = [...streams.vnodes.keys()].map((v) => this.partitionOf(table, streams.startMs, v));
      const stored = await this.context.offsets(partitions);
      if (stored.some((offset) => parseSourceOffset(offset) !== null)) {
        this.logger.info({ table: `${table.keyspace}.${table.table}`, generation: new Date(streams.startMs).toISOString() }, 'resuming from stored offsets');
        await this.enter(table, index, null, out);
        return;
      }
    }
    const coldStartMs = await this.coldStartPoint(table, now);
    let index = 0;
    for (let i = 0; i < starts.length; i++) if (starts[i]! <= coldStartMs) index = i;
    this.logger.info(
      { table: `${table.keyspace}.${table.table}`, from: new Date(Math.max(coldStartMs, starts[index]!)).toISOString() },
      'no stored offsets: first start',
    );
    await this.enter(table, index, coldStartMs, out);
  }

  /** `scylla.initial.lookback.ms` back from now, or the oldest change the log can still hold. */
  private async coldStartPoint(table: TableState, now: number): Promise<number> {
    const lookback = this.config['scylla.initial.lookback.ms'];
    if (lookback > 0) return now - lookback;
    const ttlSeconds = await this.cdcTtlSeconds(table);
    return ttlSeconds > 0 ? now - ttlSeconds * 1000 : -Infinity;
  }

  /** The table's CDC TTL (ScyllaDB keeps CDC options in system_schema.scylla_tables); 0 when unknown. */
  private async cdcTtlSeconds(table: TableState): Promise<number> {
    try {
      const result = await executePrepared(this.client, 'SELECT cdc FROM system_schema.scylla_tables WHERE keyspace_name = ? AND table_name = ?', [
        table.keyspace,
        table.table,
      ]);
      const options = result.first()?.get('cdc') as Map<string, string> | Record<string, string> | null | undefined;
      const ttl = options instanceof Map ? options.get('ttl') : options?.ttl;
      return Number(ttl ?? 0) || 0;
    } catch {
      return 0;
    }
  }

  /**
   * Starts reading generation `index` for the task's vnodes: from their stored offsets, else
   * from the generation start (or the cold-start point, whichever is later).
   */
  private async enter(table: TableState, index: number, coldStartMs: number | null, out: SourceRecord[]): Promise<void> {
    const streams = await this.streamsOf(table.sets, index);
    const own = [...streams.vnodes.entries()].filter(([vnode]) => this.ownsVnode(vnode));
    const partitions = own.map(([vnode]) => this.partitionOf(table, streams.startMs, vnode));
    const stored = partitions.length > 0 ? await this.context.offsets(partitions) : [];
    const now = Date.now();
    table.vnodes = own.map(([vnode, vnodeStreams], i) => {
      const offset = parseSourceOffset(stored[i]);
      const startMs = offset ? offset.windowStartMs : Math.max(streams.startMs, coldStartMs ?? -Infinity);
      const sizeMs = offset ? Math.max(this.settings.windowMs, offset.windowEndMs - offset.windowStartMs) : this.settings.windowMs;
      return {
        vnode,
        streams: vnodeStreams,
        partition: partitions[i]!,
        cursor: { startMs, sizeMs, lastReadAtMs: null },
        changeId: offset?.changeId,
        finished: false,
        lastOffsetJson: stored[i] ? stableJson(stored[i]) : null,
        lastOffsetAtMs: now,
      };
    });
    table.generation = index;
    table.streams = streams;
    table.lastBarrierCheckMs = -Infinity;
    if (coldStartMs !== null) {
      // Record the cold-start point at once: a restart before the first change must not
      // compute a new one (and skip what happened in between).
      for (const vnode of table.vnodes) out.push(this.marker(table, vnode, this.currentOffset(vnode), 'start'));
    }
    this.logger.info(
      { table: `${table.keyspace}.${table.table}`, generation: new Date(streams.startMs).toISOString(), vnodes: table.vnodes.length },
      'reading CDC generation',
    );
  }

  // ---- windows ------------------------------------------------------------------------------

  private async readWindow(table: TableState, vnode: VnodeState, startMs: number, endMs: number): Promise<LogRow[]> {
    if (Date.now() - table.shapeReadAtMs > SCHEMA_REFRESH_MS) await this.refreshShape(table);
    const placeholders = vnode.streams.map(() => '?').join(', ');
    const query =
      `SELECT * FROM "${table.keyspace}"."${table.table}${LOG_TABLE_SUFFIX}" ` +
      `WHERE "cdc$stream_id" IN (${placeholders}) AND "cdc$time" > ? AND "cdc$time" <= ?`;
    const params: unknown[] = [
      ...vnode.streams,
      new cassandra.types.TimeUuid(minTimeuuid(startMs)),
      new cassandra.types.TimeUuid(maxTimeuuid(endMs - 1)),
    ];
    const fetchSize = this.config['scylla.query.options.fetch.size'] || 5000;
    const rows: LogRow[] = [];
    let pageState: string | undefined;
    do {
      // Not prepared on purpose: a prepared `SELECT *` keeps the columns it was prepared with,
      // and would hide columns added by ALTER TABLE (scylla-cdc-java#83).
      const result = await this.client.execute(query, params, { prepare: false, fetchSize, ...(pageState ? { pageState } : {}) });
      const logColumns = result.columns.map((c) => c.name).join(',');
      if (logColumns !== table.logColumns) {
        // Columns added or dropped since the last read: the base table was altered.
        if (table.logColumns !== null) this.logger.info({ table: `${table.keyspace}.${table.table}` }, 'CDC log columns changed; re-reading the table schema');
        await this.refreshShape(table);
        table.logColumns = logColumns;
      }
      for (const row of result.rows) rows.push(logRowOf(row, result.columns));
      pageState = result.pageState ?? undefined;
    } while (pageState);
    vnode.cursor.lastReadAtMs = Date.now();
    return rows;
  }

  private recordsOfWindow(table: TableState, vnode: VnodeState, startMs: number, endMs: number, rows: LogRow[], now: number): SourceRecord[] {
    rows.sort(compareLogRows);
    const records: SourceRecord[] = [];
    let offset: VnodeOffset = { windowStartMs: startMs, windowEndMs: endMs, ...(vnode.changeId ? { changeId: vnode.changeId } : {}) };
    let i = 0;
    while (i < rows.length) {
      const identity = writeIdentity(rows[i]!);
      let j = i;
      while (j < rows.length && writeIdentity(rows[j]!) === identity) j += 1;
      const write = rows.slice(i, j);
      i = j;
      const first = write[0]!;
      if (!isAfterChange(first.time, first.streamId, vnode.changeId)) continue;
      const events = this.eventsOfWrite(table, write, now);
      const complete = write[write.length - 1]!.endOfBatch;
      const after: VnodeOffset = complete ? { windowStartMs: startMs, windowEndMs: endMs, changeId: { time: first.time, streamId: first.streamId } } : offset;
      events.forEach((event, k) => {
        records.push(this.recordOf(table, vnode, event, k === events.length - 1 ? after : offset));
      });
      offset = after;
    }
    const nextStart = endMs;
    vnode.cursor = {
      startMs: nextStart,
      sizeMs: nextWindowSize(vnode.cursor.sizeMs, rows.length, nextStart, now, this.settings),
      lastReadAtMs: vnode.cursor.lastReadAtMs,
    };
    vnode.changeId = undefined;
    if (records.length > 0) {
      vnode.lastOffsetJson = stableJson(records[records.length - 1]!.sourceOffset);
      vnode.lastOffsetAtMs = now;
    }
    return records;
  }

  /** The events of one write, in the configured format (`cdc.output.format`). */
  private eventsOfWrite(table: TableState, write: LogRow[], now: number): FormattedEvent[] {
    const context = { version: this.meta.version, topicPrefix: this.config['topic.prefix'], keyspace: table.keyspace, table: table.table };
    const format = this.config['cdc.output.format'];
    if (format === 'legacy' || format === 'advanced') {
      return scyllaFormatEvents(
        write,
        table.shape,
        {
          format,
          preimages: this.config['experimental.preimages.enabled'],
          includeBefore: this.config['cdc.include.before'] as 'none' | 'full' | 'only-updated',
          includeAfter: this.config['cdc.include.after'] as 'none' | 'full' | 'only-updated',
        },
        // Debezium's clock gives µs: so does the connector's.
        { ...context, nowUs: Math.round((performance.timeOrigin + performance.now()) * 1000) },
      );
    }
    return changesOfWrite(write, table.shape).map((change) => ({
      key: change.key,
      value: envelopeOf(change, { ...context, nowMs: now }) as unknown as Record<string, unknown>,
      row: change.row,
    }));
  }

  private recordOf(table: TableState, vnode: VnodeState, event: FormattedEvent, offset: VnodeOffset): SourceRecord {
    const row = event.row;
    const time = timeuuidString(row.time);
    return {
      sourcePartition: vnode.partition,
      sourceOffset: sourceOffset(offset),
      topic: table.topic,
      key: event.key,
      value: event.value,
      // Stream, write time and sequence number name one log row: republishing after a crash
      // produces the same id, which the bus accepts once.
      id: `cdc-${table.idPrefix}-${row.streamId.toString('hex')}-${time}-${row.batchSeqNo}`,
      timestamp: Math.floor(row.micros / 1000),
    };
  }

  // ---- heartbeats and markers ---------------------------------------------------------------

  private currentOffset(vnode: VnodeState): VnodeOffset {
    return {
      windowStartMs: vnode.cursor.startMs,
      windowEndMs: vnode.cursor.startMs + vnode.cursor.sizeMs,
      ...(vnode.changeId ? { changeId: vnode.changeId } : {}),
    };
  }

  private marker(table: TableState, vnode: VnodeState, offset: VnodeOffset, reason: 'heartbeat' | 'generation-finished' | 'start'): SourceRecord {
    const stored = sourceOffset(offset);
    const json = stableJson(stored);
    vnode.lastOffsetJson = json;
    vnode.lastOffsetAtMs = Date.now();
    const partitionJson = stableJson(vnode.partition);
    return {
      sourcePartition: vnode.partition,
      sourceOffset: stored,
      topic: this.heartbeatTopic,
      key: `${table.keyspace}.${table.table}/${vnode.partition.generation_start}/${vnode.vnode}`,
      value: { reason, partition: vnode.partition, offset: stored, ts_ms: Date.now() },
      id: `hb-${createHash('sha256').update(`${this.heartbeatTopic}|${partitionJson}|${json}`).digest('hex').slice(0, 40)}`,
    };
  }

  private dueHeartbeats(now: number): SourceRecord[] {
    const interval = this.config['heartbeat.interval.ms'];
    if (interval <= 0) return [];
    const out: SourceRecord[] = [];
    for (const table of this.tables) {
      for (const vnode of table.vnodes) {
        if (vnode.finished || now - vnode.lastOffsetAtMs < interval) continue;
        const offset = this.currentOffset(vnode);
        if (stableJson(sourceOffset(offset)) === vnode.lastOffsetJson) {
          vnode.lastOffsetAtMs = now;
          continue;
        }
        out.push(this.marker(table, vnode, offset, 'heartbeat'));
      }
    }
    return out;
  }

  // ---- table metadata -----------------------------------------------------------------------

  private async readShape(keyspace: string, table: string): Promise<CqlTableShape> {
    const metadata = await this.client.metadata.getTable(keyspace, table);
    if (!metadata) throw new FatalConnectorError('OMNI_ERR_CDC_TABLE_NOT_FOUND', `table ${keyspace}.${table} does not exist`);
    return shapeOf(keyspace, metadata);
  }

  private async refreshShape(table: TableState): Promise<void> {
    table.shape = await this.readShape(table.keyspace, table.table);
    table.shapeReadAtMs = Date.now();
  }
}

function shapeOf(keyspace: string, metadata: cassandra.metadata.TableMetadata): CqlTableShape & { keyspace: string } {
  return {
    keyspace,
    name: metadata.name,
    columns: metadata.columns.map((c) => ({ name: c.name, type: c.type, isStatic: (c as { isStatic?: boolean }).isStatic === true })),
    partitionKeys: metadata.partitionKeys.map((c) => ({ name: c.name, type: c.type })),
    clusteringKeys: metadata.clusteringKeys.map((c) => ({ name: c.name, type: c.type })),
  };
}

function logRowOf(row: cassandra.types.Row, columns: Array<{ name: string }>): LogRow {
  const values: Record<string, unknown> = {};
  for (const { name } of columns) values[name] = row.get(name);
  const time = (row.get('cdc$time') as cassandra.types.TimeUuid).getBuffer();
  const ttl = row.get('cdc$ttl') as cassandra.types.Long | null;
  return {
    streamId: row.get('cdc$stream_id') as Buffer,
    time,
    micros: timeuuidToMicros(time),
    batchSeqNo: Number(row.get('cdc$batch_seq_no')),
    endOfBatch: row.get('cdc$end_of_batch') === true,
    operation: Number(row.get('cdc$operation')),
    ttl: ttl === null || ttl === undefined ? null : Number(ttl),
    values,
  };
}

function createClient(config: ScyllaCdcConfig): cassandra.Client {
  const dc = config['scylla.local.dc'];
  const user = config['scylla.user'];
  const password = config['scylla.password'];
  const consistencyName = config['scylla.consistency.level'].toLowerCase().replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
  const consistency = (cassandra.types.consistencies as unknown as Record<string, number>)[consistencyName];
  return new cassandra.Client({
    contactPoints: config['scylla.cluster.ip.addresses'],
    ...(dc ? { localDataCenter: dc } : {}),
    ...(user ? { credentials: { username: user, password: password?.value() ?? '' } } : {}),
    // No token-aware routing: the log table's CDCPartitioner places a stream by the first
    // 8 bytes of its id, not by Murmur3, so the driver's token map would route wrongly.
    policies: {
      loadBalancing: dc ? new cassandra.policies.loadBalancing.DCAwareRoundRobinPolicy(dc) : new cassandra.policies.loadBalancing.RoundRobinPolicy(),
    },
    // Table metadata is read on demand, fresh each time (schema changes must be seen at once).
    isMetadataSyncEnabled: false,
    encoding: { map: Map },
    queryOptions: { ...(consistency !== undefined ? { consistency } : {}) },
  });
}

function backoff(failures: number): number {
  const exp = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(failures - 1, 20));
  return Math.round(exp * (0.8 + Math.random() * 0.4));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function newStreamSets(source: StreamSetSource, kind: StreamSets['kind']): StreamSets {
  return { source, starts: [], readAtMs: -Infinity, cache: new Map(), kind };
}
