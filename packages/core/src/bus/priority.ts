/**
 * A message's priority (`high`, `normal`, `low`) as a produce gives it and as it is kept: in the
 * header omnibus.priority, for `high` and `low` only. How a sink acts on it: priority-lanes.ts.
 */
import { laneName, laneOf, PRIORITIES, PRIORITY_HEADER, type Message, type Priority } from '../store/port.ts';

export const priorityOf = (message: Pick<Message, 'headers'>): Priority => laneOf(message.headers) ?? 'normal';

/**
 * The headers of a produce item given its `priority` (or its omnibus.priority header, when it
 * gives no field): the header is kept for `high` and `low` only. A string says what is wrong.
 */
export function priorityHeaders(raw: unknown, headers: Record<string, string>): Record<string, string> | string {
  const priority = raw ?? headers[PRIORITY_HEADER];
  if (priority !== null && priority !== undefined && !PRIORITIES.includes(priority as Priority)) return `must be one of ${PRIORITIES.join(', ')}`;
  const { [PRIORITY_HEADER]: _previous, ...rest } = headers;
  return priority === 'high' || priority === 'low' ? { ...rest, [PRIORITY_HEADER]: priority } : rest;
}

/** Where a sink's watermarks of a topic's shard are kept: the buffer reader's under the topic, each lane's under its name. */
export const watermarkKeys = (topic: string): string[] => [topic, laneName(topic, 'high'), laneName(topic, 'low')];
