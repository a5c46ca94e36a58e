/**
 * Topic rules, shared by the data plane's `POST /topics` and by the runtime's automatic
 * creation of dead-letter and source topics, so every topic satisfies the same constraints.
 */
import { coreError } from '../errors.ts';
import type { QuietHours, Store, Topic } from '../store/port.ts';
import { parseQuietHours } from './quiet-hours.ts';
import { schemaProblem } from './schemas.ts';

export const TOPIC_NAME_PATTERN = /^[A-Za-z0-9._-]{1,249}$/;
export const MAX_SHARDS = 4096;
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** From one second (tests, demos) to ten years; CQL TTLs stop at twenty. */
export const MIN_RETENTION_MS = 1000;
export const MAX_RETENTION_MS = 10 * 365 * 24 * 3600 * 1000;

export interface TopicSpec {
  name: string;
  shards: number;
  schema?: Record<string, unknown>;
  retentionMs?: number;
  /** As JSON (`{start, end, time_zone}`): checked here. */
  quietHours?: unknown;
}

/** Problems of a topic spec by field; empty when it is valid. */
export function topicProblems(spec: { name?: unknown; shards?: unknown; schema?: unknown; retentionMs?: unknown; quietHours?: unknown }): Record<string, string> {
  const problems: Record<string, string> = {};
  if (typeof spec.name !== 'string' || !TOPIC_NAME_PATTERN.test(spec.name)) {
    problems.name = 'must be 1 to 249 characters from [A-Za-z0-9._-]';
  }
  if (typeof spec.shards !== 'number' || !Number.isInteger(spec.shards) || spec.shards < 1 || spec.shards > MAX_SHARDS) {
    problems.shards = `must be an integer from 1 to ${MAX_SHARDS}`;
  }
  if (spec.schema !== undefined) {
    const problem = schemaProblem(spec.schema);
    if (problem) problems.schema = `is not a valid JSON Schema: ${problem}`;
  }
  if (spec.retentionMs !== undefined) {
    const r = spec.retentionMs;
    if (typeof r !== 'number' || !Number.isInteger(r) || r < MIN_RETENTION_MS || r > MAX_RETENTION_MS) {
      problems['retention.ms'] = `must be an integer from ${MIN_RETENTION_MS} to ${MAX_RETENTION_MS}`;
    }
  }
  if (spec.quietHours !== undefined) {
    const quiet = parseQuietHours(spec.quietHours, 'quiet_hours');
    if (Array.isArray(quiet)) for (const { field, message } of quiet) problems[field] = message;
  }
  return problems;
}

/** The topic a spec describes, or a 400 naming every problem. */
export function newTopic(spec: TopicSpec, now = Date.now()): Topic {
  const problems = topicProblems(spec);
  if (Object.keys(problems).length > 0) {
    const summary = Object.entries(problems)
      .map(([field, problem]) => `${field} ${problem}`)
      .join('; ');
    throw coreError('OMNI_ERR_TOPIC_INVALID', { problem: `Invalid topic: ${summary}` }, { errors: problems });
  }
  return {
    name: spec.name,
    shards: spec.shards,
    ...(spec.schema ? { schema: spec.schema } : {}),
    retentionMs: spec.retentionMs ?? DEFAULT_RETENTION_MS,
    createdAt: now,
    ...(spec.quietHours !== undefined ? { quietHours: parseQuietHours(spec.quietHours, 'quiet_hours') as QuietHours } : {}),
  };
}

/** The existing topic of that name, or a new one created from `spec` (whoever wins a race, both get the stored one). */
export async function ensureTopic(store: Store, spec: TopicSpec): Promise<Topic> {
  const existing = await store.getTopic(spec.name);
  if (existing) return existing;
  const topic = newTopic(spec);
  if (await store.createTopic(topic)) return topic;
  const winner = await store.getTopic(spec.name);
  if (!winner) throw new Error(`topic ${spec.name} was neither created nor found`);
  return winner;
}
