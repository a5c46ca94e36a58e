/**
 * Who runs what: a pure function of (connectors, live members), so that every worker computes
 * the same plan from the same store reads and no coordinator is needed.
 *
 * Rendezvous (highest-random-weight) hashing: each (task, member) pair gets a weight from a
 * hash both sides agree on, and a task goes to its heaviest member. When a member joins, it
 * takes only the tasks for which it outweighs their owner; when one leaves, only its tasks
 * move. Plain rendezvous hashing leaves the load of a small connector to chance (6 tasks over
 * 3 workers land 4/2/0 often enough), so each connector's tasks are spread with bounded
 * loads: every member gets ⌊T/M⌋ or ⌈T/M⌉ of them, filled in decreasing weight order, which
 * keeps the movement close to the minimum.
 */
import { createHash } from 'node:crypto';

export interface TaskUnit {
  connector: string;
  task: number;
}

export interface ConnectorTasks {
  name: string;
  /** How many tasks the connector has now (its task configs). */
  tasks: number;
  /** The worker groups its tasks may run in (`worker.groups`); empty or absent: any worker. */
  groups?: readonly string[];
}

/** The worker groups of each member (`worker.groups` of its config); a member absent or without groups is in none. */
export type MemberGroups = ReadonlyMap<string, readonly string[]>;

/** The members a connector's tasks may run on: all of them, or those in one of its groups. */
export function eligibleMembers(connector: Pick<ConnectorTasks, 'groups'>, members: readonly string[], groupsOf: MemberGroups = new Map()): string[] {
  const wanted = connector.groups ?? [];
  if (wanted.length === 0) return [...members];
  return members.filter((member) => (groupsOf.get(member) ?? []).some((group) => wanted.includes(group)));
}

/** The hash both sides agree on: 48 bits of SHA-1 over member and key (a JS number holds them exactly). */
export function weight(member: string, key: string): number {
  return createHash('sha1').update(member).update('\u0000').update(key).digest().readUIntBE(0, 6);
}

export function taskKey(connector: string, task: number): string {
  return `${connector}/${task}`;
}

/** Plain rendezvous hashing: the heaviest member for `key` (ties go to the smaller id). */
export function ownerOf(key: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const member of members) {
    const w = weight(member, key);
    if (w > bestWeight || (w === bestWeight && best !== undefined && member < best)) {
      best = member;
      bestWeight = w;
    }
  }
  return best;
}

/** The member that writes a connector's own status (Kafka's connector instance). */
export function connectorOwner(connector: string, members: readonly string[]): string | undefined {
  return ownerOf(`connector:${connector}`, members);
}

/**
 * Every connector's tasks over the members: member id → its tasks. Members without tasks are
 * absent, and so are the tasks of a connector none of whose worker groups has a live member
 * (see `eligibleMembers`). Each connector is spread over its eligible members only.
 */
export function assignTasks(connectors: readonly ConnectorTasks[], members: readonly string[], groupsOf?: MemberGroups): Map<string, TaskUnit[]> {
  const plan = new Map<string, TaskUnit[]>();
  const ids = [...new Set(members)].sort();
  if (ids.length === 0) return plan;
  for (const connector of connectors) {
    const eligible = eligibleMembers(connector, ids, groupsOf);
    if (eligible.length === 0) continue;
    for (const [member, units] of assignConnector(connector, eligible)) {
      const list = plan.get(member) ?? [];
      list.push(...units);
      plan.set(member, list);
    }
  }
  for (const units of plan.values()) units.sort((a, b) => (a.connector === b.connector ? a.task - b.task : a.connector < b.connector ? -1 : 1));
  return plan;
}

function assignConnector(connector: ConnectorTasks, members: readonly string[]): Map<string, TaskUnit[]> {
  const out = new Map<string, TaskUnit[]>();
  const base = Math.floor(connector.tasks / members.length);
  let roundUps = connector.tasks % members.length;

  const pairs: Array<{ member: string; task: number; weight: number }> = [];
  for (let task = 0; task < connector.tasks; task++) {
    const key = taskKey(connector.name, task);
    for (const member of members) pairs.push({ member, task, weight: weight(member, key) });
  }
  pairs.sort((a, b) => b.weight - a.weight || (a.member < b.member ? -1 : a.member > b.member ? 1 : a.task - b.task));

  const load = new Map<string, number>();
  const placed = new Set<number>();
  for (const { member, task } of pairs) {
    if (placed.has(task)) continue;
    const current = load.get(member) ?? 0;
    if (current < base || (current === base && roundUps > 0)) {
      if (current === base) roundUps -= 1;
      load.set(member, current + 1);
      placed.add(task);
      const units = out.get(member) ?? [];
      units.push({ connector: connector.name, task });
      out.set(member, units);
      if (placed.size === connector.tasks) break;
    }
  }
  return out;
}
