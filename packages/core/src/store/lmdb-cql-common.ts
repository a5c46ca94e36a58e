/**
 * What the LMDB and CQL adapters share: the checks every write gets before anything is
 * written, and the small encodings both key their rows by.
 */
import { randomBytes } from 'node:crypto';
import { coreError, type CoreError } from '../errors.ts';
import type { Message, Topic } from './port.ts';

export const notInitialized = (description: string): CoreError => coreError('OMNI_ERR_STORE_NOT_INITIALIZED', { store: description });

/**
 * Checks a batch of messages against their topics before anything is written, so that a bad
 * message rejects the whole batch and no half of it lands in the store.
 */
/**
 * The topics whose cached record routes fewer shards than a message names: their shard count
 * was raised since they were cached (bus/reshard.ts), so they must be read again.
 */
export function outgrownTopics(messages: readonly Message[], cached: (name: string) => Topic | undefined): Set<string> {
  const outgrown = new Set<string>();
  for (const message of messages) {
    const topic = cached(message.topic);
    if (topic && message.shard >= topic.shards) outgrown.add(message.topic);
  }
  return outgrown;
}

export function checkMessages(messages: readonly Message[], topicOf: (name: string) => Topic | undefined): void {
  const seen = new Set<string>();
  for (const message of messages) {
    const topic = topicOf(message.topic);
    if (!topic) throw coreError('OMNI_ERR_STORE_TOPIC_UNKNOWN', { topic: message.topic });
    if (!Number.isInteger(message.shard) || message.shard < 0 || message.shard >= topic.shards) {
      throw coreError('OMNI_ERR_STORE_MESSAGE_INVALID', {
        problem: `message ${message.id}: shard ${message.shard} is outside topic "${topic.name}" (shards 0 to ${topic.shards - 1})`,
      });
    }
    if (!Number.isSafeInteger(message.createdAt) || message.createdAt < 0) {
      throw coreError('OMNI_ERR_STORE_MESSAGE_INVALID', { problem: `message ${message.id}: createdAt must be whole milliseconds, got ${message.createdAt}` });
    }
    if (typeof message.id !== 'string' || message.id.length === 0) {
      throw coreError('OMNI_ERR_STORE_MESSAGE_INVALID', { problem: 'a message id must be a non-empty string' });
    }
    if (seen.has(message.id)) throw coreError('OMNI_ERR_STORE_MESSAGE_INVALID', { problem: `message id ${message.id} appears twice in one batch` });
    seen.add(message.id);
  }
}

/**
 * Tie-breakers for events that share a message and a millisecond: a per-process counter
 * (keeps one process's events in the order it appended them) and a random process tag (keeps
 * two processes from overwriting each other's events).
 */
export class EventSequence {
  private counter = 0;
  readonly tag = randomBytes(4).toString('hex');
  next(): number {
    this.counter += 1;
    return this.counter;
  }
}
