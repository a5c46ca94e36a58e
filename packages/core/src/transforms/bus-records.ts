/**
 * The chain on the bus's records. A sink runs it on each record before `put` (a record it
 * drops is settled `filtered` for that connector: see {@link TransformingSinkTask}); a source
 * runs it on each polled record before publishing (a dropped record is not published, its
 * offset is still committed; RegexRouter and friends change the topic it is published to).
 * Keys stay strings on the bus: a key a stage made into another JSON value is kept as its
 * canonical JSON, a null key as the empty string.
 */
import { stableJson, type SinkOutcome, type SinkRecord, type SinkTask, type SinkTaskContext, type SourceRecord, type TransformRecord } from '@omnibus/sdk';
import type { TransformChain } from './chain.ts';
import { templateUsed } from './templates/service.ts';

/** The outcome of a record a sink's chain dropped: it is done for that connector, and was not sent. */
export interface FilteredOutcome {
  status: 'filtered';
}

export type ChainedOutcome = SinkOutcome | FilteredOutcome;

export function keyText(key: unknown): string {
  if (typeof key === 'string') return key;
  if (key === null || key === undefined) return '';
  return stableJson(key);
}

export function sinkRecordThrough(chain: TransformChain, record: SinkRecord): SinkRecord | null {
  const input: TransformRecord = {
    topic: record.topic,
    key: record.key,
    value: record.value,
    headers: record.headers,
    timestamp: record.timestamp,
    shard: record.shard,
    id: record.id,
    direction: 'sink',
  };
  const out = chain.apply(input);
  if (out === null) return null;
  const result: SinkRecord = {
    ...record,
    topic: out.topic,
    key: keyText(out.key),
    value: out.value,
    headers: { ...out.headers },
    timestamp: out.timestamp ?? record.timestamp,
  };
  return result;
}

export function sourceRecordThrough(chain: TransformChain, record: SourceRecord): SourceRecord | null {
  const input: TransformRecord = {
    topic: record.topic,
    key: record.key,
    value: record.value,
    headers: record.headers ?? {},
    timestamp: record.timestamp,
    ...(record.id !== undefined ? { id: record.id } : {}),
    direction: 'source',
  };
  const out = chain.apply(input);
  if (out === null) return null;
  const result: SourceRecord = { ...record, topic: out.topic, key: keyText(out.key), value: out.value, headers: { ...out.headers } };
  if (out.timestamp !== undefined) result.timestamp = out.timestamp;
  return result;
}

/** The records that pass the chain, to publish. Throws when a record fails in a stage. */
export function sourceRecordsThrough(chain: TransformChain, records: readonly SourceRecord[]): SourceRecord[] {
  const out: SourceRecord[] = [];
  for (const record of records) {
    const transformed = sourceRecordThrough(chain, record);
    if (transformed !== null) out.push(transformed);
  }
  return out;
}

/**
 * A sink task behind its connector's chain: `put` runs each record through the chain, hands
 * the task only those that pass, and answers for every record in order: the task's outcome,
 * `filtered` for a dropped record, or `failed` (permanently, with the stage's error) for a
 * record a stage could not transform.
 */
export class TransformingSinkTask implements SinkTask<unknown> {
  constructor(
    private readonly task: SinkTask<unknown>,
    private readonly chain: TransformChain,
  ) {}

  start(config: unknown, context: SinkTaskContext): Promise<void> {
    return this.task.start(config, context);
  }

  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    await this.chain.prepare();
    const outcomes: ChainedOutcome[] = new Array<ChainedOutcome>(records.length);
    const passed: SinkRecord[] = [];
    const positions: number[] = [];
    for (let i = 0; i < records.length; i++) {
      try {
        const transformed = sinkRecordThrough(this.chain, records[i]!);
        if (transformed === null) outcomes[i] = { status: 'filtered' };
        else {
          passed.push(transformed);
          positions.push(i);
        }
      } catch (error) {
        const code = typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'OMNI_ERR_TRANSFORM_FAILED';
        outcomes[i] = { status: 'failed', error: { code, message: error instanceof Error ? error.message : String(error) } };
      }
    }
    if (passed.length > 0) {
      const answered = await this.task.put(passed);
      // A task that breaks its contract is reported by the runner, which checks what it gets.
      if (!Array.isArray(answered) || answered.length !== passed.length) return answered;
      for (let j = 0; j < positions.length; j++) outcomes[positions[j]!] = withTemplateUsed(answered[j]!, passed[j]!);
    }
    // The runner knows `filtered`; connectors never return it.
    return outcomes as SinkOutcome[];
  }

  stop(): Promise<void> {
    return this.task.stop();
  }
}

/**
 * A sent record that the chain rendered from a template keeps the template, version and locale
 * in its `sent` event (`details.template`): its stored message does not have the headers a
 * produce-time render writes, and `GET /messages/{id}` shows it from there.
 */
function withTemplateUsed(outcome: SinkOutcome, record: SinkRecord): SinkOutcome {
  if (outcome.status !== 'sent') return outcome;
  const template = templateUsed(record.headers);
  return template ? { ...outcome, details: { ...outcome.details, template } } : outcome;
}
