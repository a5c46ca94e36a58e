/**
 * Dead letters: records a sink task gave up on are produced to the connector's dead-letter
 * topic (errors.deadletterqueue.topic.name), with headers naming the connector and the error.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '@omnibus/sdk';
import type { Store, Topic } from '../store/port.ts';
import type { Producer } from './producer.ts';
import type { Pending } from './sink-shard.ts';
import { ensureTopic } from './topics.ts';

export interface DeadLetterFailure {
  pending: Pending;
  error: { code: string; message: string };
  exhausted: boolean;
}

/** Per message id: the dead letter's id, or why it could not be written. */
export type DeadLetterResults = Map<string, { id: string } | { error: string }>;

export class DeadLetters {
  private readonly dlqTopics = new Map<string, Topic>();

  constructor(
    private readonly store: Store,
    private readonly producer: Producer,
    private readonly connector: string,
    private readonly taskId: number,
    /** The task's source topics (a missing dead-letter topic is created with its source's shard count). */
    private readonly sourceTopics: ReadonlyMap<string, Topic>,
    private readonly logger: Logger,
  ) {}

  /**
   * Produces failed records to the dead-letter topic (created with the source topic's shard
   * count if missing), with headers naming the connector and the error. The letter's id is
   * derived from the message and the connector, so producing it twice keeps one copy.
   */
  async produce(dlqName: string | undefined, failures: readonly DeadLetterFailure[]): Promise<DeadLetterResults> {
    const out: DeadLetterResults = new Map();
    if (!dlqName) return out;
    const bySource = new Map<string, DeadLetterFailure[]>();
    for (const failure of failures) {
      const list = bySource.get(failure.pending.message.topic) ?? [];
      list.push(failure);
      bySource.set(failure.pending.message.topic, list);
    }
    for (const [sourceTopic, list] of bySource) {
      try {
        let topic = this.dlqTopics.get(dlqName);
        if (!topic) {
          const source = this.sourceTopics.get(sourceTopic);
          topic = await ensureTopic(this.store, { name: dlqName, shards: source?.shards ?? 16 });
          this.dlqTopics.set(dlqName, topic);
        }
        for (let i = 0; i < list.length; i += this.producer.limits.maxMessages) {
          const chunk = list.slice(i, i + this.producer.limits.maxMessages);
          const items = chunk.map(({ pending, error, exhausted }) => ({
            id: deadLetterId(this.connector, pending.message.id),
            key: pending.message.key,
            value: pending.message.value,
            headers: {
              ...pending.message.headers,
              'omnibus.errors.connector.name': this.connector,
              'omnibus.errors.task.id': String(this.taskId),
              'omnibus.errors.topic': pending.message.topic,
              'omnibus.errors.shard': String(pending.message.shard),
              'omnibus.errors.message.id': pending.message.id,
              'omnibus.errors.code': error.code,
              'omnibus.errors.message': error.message,
              'omnibus.errors.attempts': String(pending.attempts + 1),
              'omnibus.errors.reason': exhausted ? 'retries exhausted' : 'permanent failure',
            },
            ...(pending.message.group ? { group: pending.message.group } : {}),
          }));
          const produced = await this.producer.produce(topic.name, items);
          produced.forEach((p, j) => out.set(chunk[j]!.pending.message.id, { id: p.id }));
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.logger.error({ err: error, topic: dlqName }, 'could not write to the dead-letter topic; records are marked failed');
        for (const { pending } of list) if (!out.has(pending.message.id)) out.set(pending.message.id, { error: message });
      }
    }
    return out;
  }
}

function deadLetterId(connector: string, messageId: string): string {
  // Hex keeps ids within the produce id alphabet ([A-Za-z0-9._:-]).
  const digest = createHash('sha256').update(connector).digest('hex').slice(0, 12);
  const id = `${messageId}:dlq:${digest}`;
  return id.length <= 128 ? id : `dlq:${createHash('sha256').update(`${connector}\u0000${messageId}`).digest('hex')}`;
}
