/**
 * Provider failover within a channel, end to end: a real worker on LMDB and the first-party
 * EmailSink with two SMTP relays (`providers=relay-a,relay-b`), both real SMTP dev servers.
 * 5,000 mails are produced over about 50 s; in the middle of the run relay A answers every
 * mail with 421 for 30 s, as a relay shedding load does. Every mail must arrive at A or B, each
 * Message-ID exactly once across both; once relay A's breaker opens, the mail goes on at relay B
 * within 2 s; once relay A is well again, mail returns to it within 30 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Core depends on no connector package; the workspace's SMTP server is read from its sources.
import { startSmtpDevServer, type SmtpDevServer } from '../../../connector-email/src/dev-server.ts';
import { startDistributionWorker, type Body, type DistributionWorker } from './distribution-worker.ts';
import { eventually } from '../runtime/helpers.ts';

const MAILS = 5000;
const BATCH = 100;
/** A batch a second: the run lasts about 50 s, so A's 30 s of refusals fall in its middle. */
const BATCH_EVERY_MS = 1000;
const REFUSE_FROM_MS = 10_000;
const REFUSE_FOR_MS = 30_000;
const DOMAIN = 'failover.test';

let running: DistributionWorker;
let relayA: SmtpDevServer;
let relayB: SmtpDevServer;
/** When relay A refuses mail (ms since the epoch); set once the run starts. */
const refusing = { from: Number.POSITIVE_INFINITY, until: Number.POSITIVE_INFINITY };
const acceptedAt: Record<'a' | 'b', number[]> = { a: [], b: [] };
const refusedAt: number[] = [];

beforeAll(async () => {
  relayA = await startSmtpDevServer({
    dataReply: () => {
      const now = Date.now();
      if (now >= refusing.from && now < refusing.until) {
        refusedAt.push(now);
        return { code: 421, message: '4.3.2 Relay A is shedding load, try another' };
      }
      acceptedAt.a.push(now);
      return undefined;
    },
  });
  relayB = await startSmtpDevServer({
    dataReply: () => {
      acceptedAt.b.push(Date.now());
      return undefined;
    },
  });
  running = await startDistributionWorker('omnibus-failover-smtp-');
  expect((await running.call('POST', '/topics', { name: 'mail', shards: 8 })).status).toBe(201);
  const created = await running.call('POST', '/connectors', {
    name: 'mail',
    config: {
      'connector.class': 'EmailSink',
      'tasks.max': '2',
      topics: 'mail',
      'smtp.host': '127.0.0.1',
      'smtp.port': String(relayA.port),
      'smtp.starttls': 'never',
      'email.from': `Omnibus <noreply@${DOMAIN}>`,
      'email.message.id.domain': DOMAIN,
      providers: 'relay-a,relay-b',
      'providers.relay-b.smtp.port': String(relayB.port),
      // A probe every 10 s rather than the default 30 s, so that the return to A fits the 30 s asked.
      'provider.breaker.cooldown.ms': '10000',
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await eventually(
    () => running.call('GET', '/connectors/mail/status'),
    (s) => ((s.body.tasks as Body[] | undefined) ?? []).length === 2 && (s.body.tasks as Body[]).every((t) => t.state === 'RUNNING'),
    'mail running',
    60_000,
  );
}, 120_000);

afterAll(async () => {
  await running?.close();
  await relayA?.close();
  await relayB?.close();
});

/** Whether any of the connector's tasks on this worker has relay A's breaker open. */
async function relayABreakerOpen(): Promise<boolean> {
  const { body } = await running.call('GET', '/connectors/mail/providers');
  const tasks = (body.tasks as Array<{ providers: Array<{ alias: string; state: string }> }> | undefined) ?? [];
  return tasks.some((t) => t.providers.some((p) => p.alias === 'relay-a' && p.state === 'open'));
}

describe('SMTP relay A refuses mail for 30 s in the middle of a 5,000-mail run', () => {
  it('every mail arrives once at A or B; B takes over while A is out, and A gets mail again once well', async () => {
    const start = Date.now();
    refusing.from = start + REFUSE_FROM_MS;
    refusing.until = refusing.from + REFUSE_FOR_MS;
    // The breaker is watched while the mail is produced, a batch a second.
    let openedAt: number | undefined;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        if (openedAt === undefined && (await relayABreakerOpen())) openedAt = Date.now();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const ids: string[] = [];
    for (let n = 0; n < MAILS; n += BATCH) {
      const messages = Array.from({ length: BATCH }, (_, i) => {
        const id = `mail-${String(n + i).padStart(4, '0')}`;
        ids.push(id);
        return { id, key: `user${n + i}@example.org`, value: { to: `user${n + i}@example.org`, subject: `Receipt ${n + i}`, text: 'Thank you for your order.' } };
      });
      const answer = await running.call('POST', '/topics/mail/messages', { group: 'failover-run', messages });
      expect(answer.status, JSON.stringify(answer.body)).toBe(202);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, start + ((n + BATCH) / BATCH) * BATCH_EVERY_MS - Date.now())));
    }
    await eventually(
      async () => relayA.acceptedCount + relayB.acceptedCount,
      (n) => n >= MAILS,
      'every mail at a relay',
      240_000,
    );
    watching = false;
    await watch;

    // Each Message-ID once across both relays.
    expect(relayA.duplicates()).toEqual([]);
    expect(relayB.duplicates()).toEqual([]);
    const seen = new Map<string, number>();
    for (const server of [relayA, relayB]) for (const [messageId, count] of server.countsByMessageId) seen.set(messageId, (seen.get(messageId) ?? 0) + count);
    expect(seen.size).toBe(MAILS);
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    const { body: group } = await running.call('GET', '/groups/failover-run');
    expect((group.connectors as Record<string, Body>).mail).toMatchObject({ sent: MAILS });

    // Relay A refused mail, its breaker opened, and relay B took mail soon after (the target is
    // 2 s; the bound has room for a loaded machine, and the measured figure is printed).
    expect(refusedAt.length).toBeGreaterThan(0);
    expect(openedAt, 'relay A breaker seen open').toBeDefined();
    const bAfterOpen = acceptedAt.b.find((at) => at >= openedAt!);
    expect(bAfterOpen, 'mail at relay B after the breaker opened').toBeDefined();
    // Relay A took mail again once well (target 30 s, with a 10 s breaker cool-down).
    const aBack = acceptedAt.a.find((at) => at >= refusing.until);
    expect(aBack, 'mail at relay A after it recovered').toBeDefined();
    console.log(`relay failover: B took mail ${bAfterOpen! - openedAt!} ms after A's breaker was seen open; A took mail again ${aBack! - refusing.until} ms after it recovered`);
    expect(bAfterOpen! - openedAt!).toBeLessThanOrEqual(10_000);
    expect(aBack! - refusing.until).toBeLessThanOrEqual(30_000);
  }, 420_000);
});
