import { describe, expect, it } from 'vitest';
import { emptySettlement, mergeSettlement } from './sink-outcomes.ts';

describe('mergeSettlement', () => {
  it('keeps everything of both settlements, the suppressions and the counts included', () => {
    const expired = emptySettlement();
    expired.events.push({ messageId: 'm1', topic: 't', at: 1, type: 'expired', connector: 'c', workerId: 'w', detail: {} });
    const deferred = emptySettlement();
    deferred.sent = 3;
    deferred.failed = 1;
    deferred.suppressed.push({ channel: 'email', category: 'marketing', reason: 'unsubscribed' });
    deferred.events.push({ messageId: 'm2', topic: 't', at: 2, type: 'sent', connector: 'c', workerId: 'w', detail: {} });

    const merged = mergeSettlement(expired, deferred);

    expect(merged).toBe(expired);
    expect(merged.events.map((e) => e.messageId)).toEqual(['m1', 'm2']);
    expect(merged.suppressed).toEqual([{ channel: 'email', category: 'marketing', reason: 'unsubscribed' }]);
    expect(merged).toMatchObject({ sent: 3, failed: 1 });
  });

  it('adds counts rather than replacing them, and leaves a settlement alone when there is nothing to add', () => {
    const into = emptySettlement();
    into.sent = 2;
    const more = emptySettlement();
    more.sent = 5;
    expect(mergeSettlement(into, more).sent).toBe(7);
    expect(mergeSettlement(into, undefined).sent).toBe(7);
  });
});
