import { describe, expect, it } from 'vitest';
import { assignTasks, connectorOwner, eligibleMembers, ownerOf, taskKey, weight, type ConnectorTasks } from './assignment.ts';

const members = (n: number, offset = 0) => Array.from({ length: n }, (_, i) => `127.0.0.1:${8083 + offset + i * 11}`);

function owners(connectors: ConnectorTasks[], ids: string[], groupsOf?: ReadonlyMap<string, readonly string[]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [member, units] of assignTasks(connectors, ids, groupsOf)) for (const u of units) out.set(taskKey(u.connector, u.task), member);
  return out;
}

function moved(before: Map<string, string>, after: Map<string, string>): number {
  let count = 0;
  for (const [key, member] of before) if (after.get(key) !== member) count += 1;
  return count;
}

const manyConnectors: ConnectorTasks[] = Array.from({ length: 40 }, (_, i) => ({ name: `conn-${i}`, tasks: 1 + (i % 8) }));
const totalTasks = manyConnectors.reduce((sum, c) => sum + c.tasks, 0);

describe('assignment', () => {
  it('weights are a deterministic function of (member, key)', () => {
    expect(weight('a:1', 'x/0')).toBe(weight('a:1', 'x/0'));
    expect(weight('a:1', 'x/0')).not.toBe(weight('a:2', 'x/0'));
    expect(Number.isSafeInteger(weight('a:1', 'x/0'))).toBe(true);
  });

  it('assigns every task exactly once, whatever the order of the member list', () => {
    const ids = members(4);
    const plan = owners(manyConnectors, ids);
    expect(plan.size).toBe(totalTasks);
    expect(owners(manyConnectors, [...ids].reverse())).toEqual(plan);
    for (const member of plan.values()) expect(ids).toContain(member);
  });

  it("spreads each connector's tasks evenly: every member gets ⌊T/M⌋ or ⌈T/M⌉", () => {
    for (const [tasks, count] of [
      [6, 3],
      [6, 4],
      [7, 3],
      [2, 5],
      [32, 7],
    ] as const) {
      const ids = members(count);
      const loads = new Map(ids.map((id) => [id, 0]));
      for (const member of owners([{ name: 'c', tasks }], ids).values()) loads.set(member, loads.get(member)! + 1);
      for (const load of loads.values()) {
        expect(load).toBeGreaterThanOrEqual(Math.floor(tasks / count));
        expect(load).toBeLessThanOrEqual(Math.ceil(tasks / count));
      }
    }
  });

  it('a joining member takes about 1/n of the tasks, and little else moves', () => {
    for (const n of [2, 3, 5, 8]) {
      const ids = members(n);
      const newcomer = '127.0.0.1:9999';
      const before = owners(manyConnectors, ids);
      const after = owners(manyConnectors, [...ids, newcomer]);
      const taken = [...after.values()].filter((m) => m === newcomer).length;
      const share = totalTasks / (n + 1);
      // Per-connector rounding makes the newcomer's share vary around 1/(n+1) of all tasks.
      expect(taken).toBeGreaterThan(share * 0.6);
      expect(taken).toBeLessThan(share * 1.6);
      // Re-balancing the rounding shuffles a few more between old members, far from a full reshuffle.
      expect(moved(before, after)).toBeLessThanOrEqual(Math.ceil(taken * 1.5));
      expect(moved(before, after)).toBeLessThan(totalTasks / 2);
    }
  });

  it('a leaving member hands over its tasks, and little else moves', () => {
    for (const n of [3, 4, 6]) {
      const ids = members(n);
      const before = owners(manyConnectors, ids);
      const leaving = ids[1]!;
      const after = owners(manyConnectors, ids.filter((id) => id !== leaving));
      const lost = [...before.values()].filter((m) => m === leaving).length;
      expect([...after.values()]).not.toContain(leaving);
      expect(moved(before, after)).toBeGreaterThanOrEqual(lost);
      expect(moved(before, after)).toBeLessThanOrEqual(Math.ceil(lost * 1.6));
    }
  });

  it('one owner per connector, stable when an unrelated member joins', () => {
    const ids = members(5);
    expect(ids).toContain(connectorOwner('mail', ids));
    expect(connectorOwner('mail', ids)).toBe(connectorOwner('mail', [...ids].reverse()));
    const keys = Array.from({ length: 200 }, (_, i) => `connector-${i}`);
    const changed = keys.filter((k) => ownerOf(k, ids) !== ownerOf(k, [...ids, '127.0.0.1:9999'])).length;
    // Plain rendezvous: only the keys the newcomer wins change owner (expected 1/6 of them).
    expect(changed).toBeGreaterThan(10);
    expect(changed).toBeLessThan(60);
    for (const k of keys) {
      const after = ownerOf(k, [...ids, '127.0.0.1:9999']);
      if (after !== ownerOf(k, ids)) expect(after).toBe('127.0.0.1:9999');
    }
  });

  it('no members, no plan; no tasks, no entries', () => {
    expect(assignTasks(manyConnectors, []).size).toBe(0);
    expect(ownerOf('x', [])).toBeUndefined();
    expect(assignTasks([{ name: 'c', tasks: 0 }], members(3)).size).toBe(0);
  });

  describe('worker groups', () => {
    const ids = members(4);
    // Two members in sms, one in email and sms-eu, one in none.
    const groupsOf = new Map<string, readonly string[]>([
      [ids[0]!, ['sms']],
      [ids[1]!, ['email', 'sms-eu']],
      [ids[3]!, ['sms']],
    ]);

    it("places a grouped connector's tasks only on members of one of its groups, spread evenly over them", () => {
      const plan = owners([{ name: 'sms', tasks: 6, groups: ['sms'] }], ids);
      const byMember = new Map<string, number>();
      for (const member of owners([{ name: 'sms', tasks: 6, groups: ['sms'] }], ids, groupsOf).values()) byMember.set(member, (byMember.get(member) ?? 0) + 1);
      expect(byMember).toEqual(new Map([[ids[0]!, 3], [ids[3]!, 3]]));
      // Without the groups map nobody is in a group: the same connector has nowhere to run.
      expect(plan.size).toBe(0);
    });

    it('takes a member in any of the named groups; an ungrouped connector runs anywhere', () => {
      const plan = owners([{ name: 'eu', tasks: 3, groups: ['sms-eu', 'push'] }], ids, groupsOf);
      expect(new Set(plan.values())).toEqual(new Set([ids[1]!]));
      expect(plan.size).toBe(3);
      const anywhere = owners([{ name: 'mail', tasks: 8 }], ids, groupsOf);
      expect(new Set(anywhere.values())).toEqual(new Set(ids));
      expect(eligibleMembers({ groups: [] }, ids, groupsOf)).toEqual(ids);
    });

    it('leaves the tasks of a connector with no live member in its groups out of the plan, and places the others', () => {
      const plan = assignTasks(
        [
          { name: 'push', tasks: 2, groups: ['push'] },
          { name: 'sms', tasks: 2, groups: ['sms'] },
        ],
        ids,
        groupsOf,
      );
      const units = [...plan.values()].flat();
      expect(units.filter((u) => u.connector === 'push')).toEqual([]);
      expect(units.filter((u) => u.connector === 'sms')).toHaveLength(2);
      expect(eligibleMembers({ groups: ['push'] }, ids, groupsOf)).toEqual([]);
    });

    it('moves only the tasks of the member that leaves its group', () => {
      const connectors: ConnectorTasks[] = [{ name: 'sms', tasks: 8, groups: ['sms'] }];
      const threeInSms = new Map(groupsOf).set(ids[2]!, ['sms']);
      const before = owners(connectors, ids, threeInSms);
      const after = owners(connectors, ids, groupsOf);
      const lost = [...before.values()].filter((m) => m === ids[2]).length;
      expect(lost).toBeGreaterThan(0);
      expect([...after.values()]).not.toContain(ids[2]);
      expect(moved(before, after)).toBeLessThanOrEqual(Math.ceil(lost * 1.6));
    });
  });
});
