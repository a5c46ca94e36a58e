/**
 * Kafka Connect's topic tracking (KIP-558): the topics a connector has actually used — a sink
 * those it has read records from, a source those it has produced to — as `GET
 * /connectors/{c}/topics` shows them, until `PUT /connectors/{c}/topics/reset` or the
 * connector's deletion forgets them.
 *
 * Kept in the store's source-offsets table, under `topics/<connector>`: connector names never
 * contain a slash, so no connector's offsets share that key; every worker reads the same view,
 * on both store adapters, without a table of its own. One row per topic, upserted.
 */
import type { Logger } from '@omnibus/sdk';
import type { Store } from '../store/port.ts';

const KEY_PREFIX = 'topics/';

/** How often a running task writes a topic it keeps using again, so that a reset forgets it only until the topic's next record. */
export const ACTIVE_TOPIC_REFRESH_MS = 60_000;

const keyOf = (connector: string) => `${KEY_PREFIX}${connector}`;

export async function activeTopics(store: Store, connector: string): Promise<string[]> {
  const rows = await store.getSourceOffsets(keyOf(connector));
  const topics = rows.map((row) => row.partition.topic).filter((topic): topic is string => typeof topic === 'string');
  return [...new Set(topics)].sort();
}

export async function resetActiveTopics(store: Store, connector: string): Promise<void> {
  await store.deleteSourceOffsets(keyOf(connector));
}

/**
 * One task's writer of its connector's active topics: a topic is written the first time the
 * task uses it, and again at most every {@link ACTIVE_TOPIC_REFRESH_MS} while it keeps using
 * it (a reset on any worker is so undone by the next use, as in Kafka).
 */
export class ActiveTopicsRecorder {
  private readonly writtenAt = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly connector: string,
    private readonly task: number,
    private readonly logger: Logger,
    private readonly enabled = true,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records the topics just used; a store failure is logged, never the task's failure. */
  async used(topics: Iterable<string>): Promise<void> {
    if (!this.enabled) return;
    const now = this.now();
    const due = [...new Set(topics)].filter((topic) => {
      const at = this.writtenAt.get(topic);
      return at === undefined || now - at >= ACTIVE_TOPIC_REFRESH_MS;
    });
    if (due.length === 0) return;
    try {
      await this.store.putSourceOffsets(
        keyOf(this.connector),
        due.map((topic) => ({ partition: { topic }, offset: { task: this.task, at: now } })),
      );
      for (const topic of due) this.writtenAt.set(topic, now);
    } catch (error) {
      this.logger.warn({ err: error, topics: due }, 'could not record the active topics of the connector; retried on its next records');
    }
  }
}
