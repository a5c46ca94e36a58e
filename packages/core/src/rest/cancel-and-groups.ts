/**
 * Group reports and cancellation, part of the data plane:
 * - `GET /groups/{g}`: exact counts by state per connector, read from the group's tallies
 *   (store/group-tally.ts), a few small reads whatever the group's size.
 * - `DELETE /messages/{id}`, `DELETE /groups/{g}`: cancel what no sink has handed to its
 *   provider yet. The cancellation is stored first (by message id, or by group), then the
 *   states are read: a sink checks for cancellations after writing `sending` and before handing
 *   off, so a message this answer counts as not handed off (pending, retrying) is never sent,
 *   and one the sink was handing off at that instant shows here as `sending`: in flight.
 *   A message held for later (send_at, quiet hours) is counted in its group from its hold on,
 *   as `scheduled`: a group held whole is found and cancelled before anything of it is due, and
 *   its messages settle `cancelled` when released (the sink checks the group's cancellation).
 */
import type { FastifyInstance } from 'fastify';
import { coreError } from '../errors.ts';
import { groupReport, type GroupState } from '../store/group-tally.ts';
import { positionOf, type DeliveryState, type Store } from '../store/port.ts';

/** Per topic, the sink connectors that read it: whose delivery states its messages have. */
export async function consumersOf(store: Store, topics: ReadonlySet<string>): Promise<Map<string, string[]>> {
  const byTopic = new Map<string, string[]>([...topics].map((t) => [t, []]));
  for (const c of await store.listConnectors()) {
    for (const topic of (c.config.topics ?? '').split(',').map((t) => t.trim())) byTopic.get(topic)?.push(c.name);
  }
  return byTopic;
}

/** What a cancel did for one connector: cancelled (never handed off), in flight (being handed off), or already past hand-off, by state. */
export interface CancelOutcome {
  cancelled: number;
  in_flight: number;
  already: Partial<Record<DeliveryState, number>>;
}

/** States a cancel stops: the message was not handed to the provider (held for later, or, retrying, not again). */
const CANCELLABLE: ReadonlySet<GroupState> = new Set(['scheduled', 'pending', 'retrying', 'cancelled']);

function cancelOutcome(counts: Partial<Record<GroupState, number>>): CancelOutcome {
  const outcome: CancelOutcome = { cancelled: 0, in_flight: 0, already: {} };
  for (const [state, n] of Object.entries(counts) as Array<[GroupState, number]>) {
    if (CANCELLABLE.has(state)) outcome.cancelled += n;
    else if (state === 'sending') outcome.in_flight += n;
    else if (state !== 'scheduled') outcome.already[state] = n;
  }
  return outcome;
}

async function groupCounts(store: Store, group: string) {
  const tallies = await store.readGroupTallies(group);
  if (tallies.length === 0) throw coreError('OMNI_ERR_BUS_GROUP_NOT_FOUND', { group });
  return groupReport(tallies, await consumersOf(store, new Set(tallies.map((t) => t.topic))));
}

export function registerGroupAndCancelRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Params: { group: string } }>('/groups/:group', async (request) => {
    const group = request.params.group;
    const { messages, connectors } = await groupCounts(store, group);
    // `truncated` stays for clients that read it: counts are exact, never capped.
    return { group, messages, truncated: false, connectors };
  });

  app.delete<{ Params: { id: string } }>('/messages/:id', async (request) => {
    const id = request.params.id;
    // A message held for later (send_at, quiet hours) is not in the buffer yet: its cancellation
    // is stored by the same (topic, shard, id) it keeps when released, and the sink that reads it
    // then settles it `cancelled`.
    const message = (await store.getMessages([id])).get(id) ?? (await store.getScheduled([id])).get(id)?.message;
    if (!message) throw coreError('OMNI_ERR_BUS_MESSAGE_NOT_FOUND', { id });
    const position = positionOf(message);
    await store.cancelMessages([position]);
    const consumers = (await consumersOf(store, new Set([message.topic]))).get(message.topic)!;
    const connectors: Record<string, CancelOutcome> = {};
    for (const connector of consumers) {
      const state = (await store.getDeliveries(connector, [position])).get(id)?.state ?? 'pending';
      connectors[connector] = cancelOutcome({ [state]: 1 });
    }
    return { id, connectors };
  });

  app.delete<{ Params: { group: string } }>('/groups/:group', async (request) => {
    const group = request.params.group;
    if ((await store.readGroupTallies(group)).length === 0) throw coreError('OMNI_ERR_BUS_GROUP_NOT_FOUND', { group });
    await store.cancelGroup(group, Date.now());
    // Read after the cancellation is stored (see above).
    const { messages, connectors } = await groupCounts(store, group);
    return { group, messages, connectors: Object.fromEntries(Object.entries(connectors).map(([c, counts]) => [c, cancelOutcome(counts)])) };
  });
}
