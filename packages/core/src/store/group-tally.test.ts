import { describe, expect, it } from 'vitest';
import { emptyTally, foldChanges, groupReport, heldChanges, messageChanges, type GroupMark } from './group-tally.ts';
import type { GroupTally, Message, ScheduledMessage } from './port.ts';

const message = (id: string): Message => ({ id, topic: 'sms', key: id, token: '0', shard: 0, value: {}, headers: {}, createdAt: 1, group: 'launch' });
const held = (id: string, reason: ScheduledMessage['reason'] = 'send_at'): ScheduledMessage => ({ message: message(id), dueAt: 10_000, reason });

describe('group tallies of held messages', () => {
  it('counts a hold as scheduled once, and its release moves it out of scheduled without counting it again', () => {
    const tally = emptyTally('sms', 0);
    const marks = new Map<string, GroupMark>();
    foldChanges(tally, marks, heldChanges([held('a'), held('b'), held('a')]));
    expect(tally).toEqual({ topic: 'sms', shard: 0, messages: 2, scheduled: 2, connectors: {} });
    foldChanges(tally, marks, messageChanges([message('a')]));
    expect(tally).toEqual({ topic: 'sms', shard: 0, messages: 2, scheduled: 1, connectors: {} });
    // Released again, held again after its release: nothing moves.
    expect(foldChanges(tally, marks, [...messageChanges([message('a')]), ...heldChanges([held('a')])]).size).toBe(0);
    foldChanges(tally, marks, messageChanges([message('b'), message('c')]));
    expect(tally).toEqual({ topic: 'sms', shard: 0, messages: 3, connectors: {} });
  });

  it('does not count a held fallback: it may never be sent', () => {
    expect(heldChanges([held('f', 'fallback')])).toEqual([]);
  });

  it('counts a release anew when the tally that counted its hold is gone (a CQL tally expired before its marks)', () => {
    const marks = new Map<string, GroupMark>([['\u0000a', { held: true }]]);
    const tally = emptyTally('sms', 0);
    foldChanges(tally, marks, messageChanges([message('a')]));
    expect(tally).toEqual({ topic: 'sms', shard: 0, messages: 1, connectors: {} });
  });

  it('reports held messages as scheduled for every connector of the topic, the rest pending, never more than the messages', () => {
    const tally: GroupTally = { topic: 'sms', shard: 0, messages: 10, scheduled: 4, connectors: { twilio: { sent: 3 } } };
    const readers = new Map([['sms', ['twilio', 'smpp']]]);
    expect(groupReport([tally], readers)).toEqual({ messages: 10, connectors: { twilio: { sent: 3, scheduled: 4, pending: 3 }, smpp: { scheduled: 4, pending: 6 } } });
    // A sink counted a released message before its release was tallied: scheduled gives way.
    const raced: GroupTally = { ...tally, connectors: { twilio: { sent: 7 } } };
    expect(groupReport([raced], readers).connectors.twilio).toEqual({ sent: 7, scheduled: 3 });
  });
});
