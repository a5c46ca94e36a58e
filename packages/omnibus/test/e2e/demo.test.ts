/**
 * The demo end to end: a real worker on LMDB, the three channels' local servers, everything
 * registered and produced through the REST API. What the demo claims is checked here from
 * the outside: each server's own counters (every message exactly once) and the API (every
 * message in a delivered state, group counts adding up).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { messageIdFor } from '@omnibus/connector-email';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CHANNELS, formatSummary, runDemo, type Channel, type DemoRun, type DemoSummary } from '../../src/demo.ts';
import { phoneOffline, whatsAppRecipient } from '../../src/demo-fallback.ts';

const MESSAGES = 300;
const DELIVERED_STATES = ['sent', 'delivered', 'read'];
/** The receipt each channel's server sends back (SMTP sends none). */
const RECEIPT: Record<Channel, string | undefined> = { email: undefined, sms: 'delivered', whatsapp: 'read' };

interface MessageReport {
  message: { id: string; topic: string };
  deliveries: Array<{ connector: string; state: string; provider_id?: string }>;
  events: Array<{ type: string; connector?: string; detail?: Record<string, unknown> }>;
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as T };
}

describe('omnibus demo (in process)', () => {
  let run: DemoRun;
  let progress = '';

  beforeAll(async () => {
    const sink = new PassThrough();
    sink.on('data', (chunk: Buffer) => (progress += chunk.toString()));
    run = await runDemo({ messages: MESSAGES, keepRunning: true, progress: sink, logLevel: 'error' });
  }, 180_000);

  afterAll(async () => {
    await run?.stop();
  });

  it('reports every message delivered exactly once', () => {
    const { summary } = run;
    expect(summary.problems).toEqual([]);
    expect(summary.ok).toBe(true);
    expect(summary.channels.map((c) => c.channel)).toEqual([...CHANNELS]);
    expect(summary.channels.reduce((n, c) => n + c.produced, 0)).toBe(MESSAGES);
    for (const channel of summary.channels) {
      expect(channel.received).toBe(channel.produced);
      expect(channel.duplicates).toBe(0);
      expect(channel.missing).toBe(0);
      expect(channel.latencyMs.p50).toBeGreaterThan(0);
      expect(channel.latencyMs.p99).toBeGreaterThanOrEqual(channel.latencyMs.p50);
    }
    // Progress went to the given stream, not to the test's stderr.
    expect(progress).toContain(`${MESSAGES}/${MESSAGES}`);
  });

  it('shows the mail moving to relay B while relay A refuses it, as the servers saw it', () => {
    const { failover } = run.summary;
    const { smtp, smtpBackup } = run.servers;
    expect(failover.refusedByA).toBeGreaterThan(0);
    expect(failover.movedToB).toBe(smtpBackup.acceptedCount);
    expect(failover.movedToB).toBeGreaterThan(0);
    // Relay A took the first quarter of the mail alone, and nothing while it refused.
    expect(failover.phases.before).toEqual({ 'relay-a': Math.floor(run.ids.email.length / 4), 'relay-b': 0 });
    expect(failover.phases.refusing['relay-a']).toBe(0);
    expect(failover.phases.refusing['relay-b']).toBeGreaterThan(0);
    const phases = Object.values(failover.phases);
    expect(phases.reduce((n, p) => n + p['relay-a'], 0)).toBe(smtp.acceptedCount);
    expect(phases.reduce((n, p) => n + p['relay-b'], 0)).toBe(smtpBackup.acceptedCount);
    expect(progress + formatSummary(run.summary)).toContain('moved to relay B');
  });

  it('shows the WhatsApp messages to offline phones falling back to one SMS each, as the servers saw it', async () => {
    const { fallback } = run.summary;
    const offline = run.ids.whatsapp.filter((_, i) => phoneOffline(whatsAppRecipient(i)));
    expect(offline.length).toBeGreaterThan(0);
    expect(fallback).toMatchObject({ withheld: offline.length, missing: 0, duplicates: 0 });
    expect(new Set(run.servers.whatsapp.withheld)).toEqual(new Set(offline));
    // Online phones whose receipt came after the deadline get their SMS too (a note, not a failure).
    expect(fallback.texted).toBe(offline.length + fallback.late);
    const texts = run.servers.smsc.messages.map((m) => /Ref (\S+)$/.exec(m.text)?.[1]);
    for (const id of offline) expect(texts.filter((ref) => ref === `${id}:fallback`), id).toHaveLength(1);
    // The chain both ways through the API.
    const original = await getJson<{ fallback_id?: string; events: Array<{ type: string }> }>(`${run.worker.url}/messages/${offline[0]}`);
    expect(original.body.fallback_id).toBe(`${offline[0]}:fallback`);
    expect(original.body.events.map((e) => e.type)).toContain('fallback');
    const sms = await getJson<{ fallback_of?: string; message: { topic: string } }>(`${run.worker.url}/messages/${offline[0]}:fallback`);
    expect(sms.body).toMatchObject({ fallback_of: offline[0], message: { topic: 'demo.sms' } });
    expect(formatSummary(run.summary)).toContain(`Channel fallback (WhatsApp -> SMS): ${offline.length} WhatsApp recipients`);
  });

  it('every message reached its server exactly once, by the servers’ own counters', () => {
    const { smtp, smtpBackup, smsc, whatsapp } = run.servers;
    expect(run.ids.email.length + run.ids.sms.length + run.ids.whatsapp.length).toBe(MESSAGES);

    // Across both SMTP relays: relay A refused mail for a while, and relay B took it.
    expect(smtp.duplicates()).toEqual([]);
    expect(smtpBackup.duplicates()).toEqual([]);
    expect(smtp.acceptedCount + smtpBackup.acceptedCount).toBe(run.ids.email.length);
    for (const id of run.ids.email) {
      const messageId = messageIdFor(id, 'example.org');
      expect((smtp.countsByMessageId.get(messageId) ?? 0) + (smtpBackup.countsByMessageId.get(messageId) ?? 0), id).toBe(1);
    }

    expect(smsc.duplicates()).toEqual([]);
    // The SMS channel's own messages; the WhatsApp fallbacks and the held and priority SMS are checked apart.
    const smsIds = smsc.messages.map((m) => /Ref (\S+)$/.exec(m.text)?.[1]).filter((ref) => ref?.startsWith(`${run.summary.runId}.sms.`) && !ref.endsWith(':fallback'));
    expect(smsIds).toHaveLength(run.ids.sms.length);
    expect(new Set(smsIds)).toEqual(new Set(run.ids.sms));

    expect(whatsapp.accepted.size).toBe(run.ids.whatsapp.length);
    for (const id of run.ids.whatsapp) expect(whatsapp.accepted.get(id), id).toBe(1);
  });

  it('shows every state change as a signed delivery event at the receiver, deduplicated by event id', () => {
    const { events } = run.summary;
    expect(events.badSignatures).toBe(0);
    expect(events.missing).toBe(0);
    // sent for every message; delivered for every SMS (with the held and priority ones beside the batch).
    expect(events.expected).toBe(MESSAGES + run.ids.sms.length + 2 * (run.summary.scheduling.held + run.summary.priority.high));
    expect(events.byState.sent).toBeGreaterThanOrEqual(MESSAGES);
    expect(events.byState.delivered).toBeGreaterThanOrEqual(run.ids.sms.length);
    expect(events.received).toBe(Object.values(events.byState).reduce((a, b) => a + b, 0));
    expect(formatSummary(run.summary)).toMatch(/Delivery events \(omnibus\.delivery-events -> WebhookSink -> local receiver\): \d+ events in \d+ signed POSTs .*; 0 bad signatures/);
  });

  it('holds SMS until their send_at, cancels held ones, refuses an expired one, and times the high-priority ones', async () => {
    const { scheduling, cancel, priority, expiry } = run.summary;
    expect(scheduling.held).toBeGreaterThan(0);
    expect(scheduling).toMatchObject({ early: 0, missing: 0, duplicates: 0, onTime: scheduling.held });
    expect(scheduling.latenessMs.p99).toBeGreaterThanOrEqual(scheduling.latenessMs.p50);
    expect(cancel.cancelled).toBeGreaterThan(0);
    expect(cancel).toMatchObject({ answeredCancelled: cancel.cancelled, states: { cancelled: cancel.cancelled }, reachedSmsc: 0 });
    expect(priority.high).toBeGreaterThan(0);
    expect(priority.arrived).toBe(priority.high);
    expect(expiry).toMatchObject({ status: 422, field: 'expires_at', stored: false });
    // What the API says of one cancelled SMS: cancelled at the SMS connector, never handed off.
    const cancelledId = `${cancel.group.replace(/\.sms-cancelled$/, '')}.sms-cancelled.0001`;
    const { status, body } = await getJson<MessageReport>(`${run.worker.url}/messages/${cancelledId}`);
    expect(status).toBe(200);
    expect(body.deliveries.find((d) => d.connector === 'demo-sms')?.state).toBe('cancelled');
    const text = formatSummary(run.summary);
    expect(text).toContain(`Scheduling: ${scheduling.held} SMS held with send_at = produce + 5 s; 0 reached the SMSC early, ${scheduling.held} after their send time;`);
    expect(text).toContain(`Cancel: ${cancel.cancelled} held SMS cancelled`);
    expect(text).toMatch(/Priorities: \d+ high-priority one-time passwords produced mid-batch: produce -> SMSC p50 \d+ ms/);
    expect(text).toContain('Expiry: a produce whose expires_at had passed was answered HTTP 422 (expires_at is in the past); nothing was stored.');
  });

  it('GET /groups/{group} counts every message of each channel in a delivered state', async () => {
    for (const channel of run.summary.channels) {
      const { status, body } = await getJson<{ messages: number; truncated: boolean; connectors: Record<string, Record<string, number>> }>(
        `${run.worker.url}/groups/${channel.group}`,
      );
      expect(status).toBe(200);
      // WhatsApp's group also holds the fallback SMS its messages produced.
      const fallbacks = channel.channel === 'whatsapp' ? run.summary.fallback.texted : 0;
      expect(body.messages).toBe(channel.produced + fallbacks);
      expect(body.truncated).toBe(false);
      const counts = body.connectors[channel.connector] ?? {};
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(channel.produced);
      for (const state of Object.keys(counts)) expect(DELIVERED_STATES, `${channel.channel}: ${state}`).toContain(state);
    }
  });

  it('GET /messages/{id} shows the delivery, its provider id and the receipt for a sample of each channel', async () => {
    for (const channel of run.summary.channels) {
      expect(channel.sampleIds.length).toBeGreaterThanOrEqual(3);
      for (const id of channel.sampleIds) {
        // Receipts are applied as they come; give the last ones a moment.
        await vi.waitFor(
          async () => {
            const { status, body } = await getJson<MessageReport>(`${run.worker.url}/messages/${id}`);
            expect(status).toBe(200);
            expect(body.message).toMatchObject({ id, topic: channel.topic });
            const delivery = body.deliveries.find((d) => d.connector === channel.connector);
            expect(delivery, `${id} has a delivery by ${channel.connector}`).toBeDefined();
            expect(DELIVERED_STATES).toContain(delivery!.state);
            expect(delivery!.provider_id).toBeTruthy();
            const receipt = RECEIPT[channel.channel];
            if (receipt) expect(body.events.map((e) => e.type)).toContain(receipt);
          },
          { timeout: 30_000, interval: 250 },
        );
      }
    }
  });
});

describe('omnibus demo (CLI)', () => {
  it('runs as `omnibus demo --json` and exits 0 with a machine-readable summary', async () => {
    const root = fileURLToPath(new URL('../../../../', import.meta.url));
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', 'packages/omnibus/src/main.ts', 'demo', '--messages', '30', '--json'],
        { cwd: root, timeout: 90_000, env: { ...process.env, NO_COLOR: '1' } },
        (error, out, err) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout: out, stderr: err }),
      );
    });
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as DemoSummary;
    expect(summary.ok).toBe(true);
    expect(summary.messages).toBe(30);
    // One of the ten WhatsApp recipients is offline: one fallback SMS.
    expect(summary.fallback).toMatchObject({ withheld: 1, missing: 0, duplicates: 0 });
    expect(summary.events).toMatchObject({ badSignatures: 0, missing: 0 });
    expect(summary.scheduling).toMatchObject({ early: 0, missing: 0 });
    expect(summary.cancel.states).toEqual({ cancelled: summary.cancel.cancelled });
    expect(summary.priority.arrived).toBe(summary.priority.high);
    expect(summary.expiry).toMatchObject({ status: 422, field: 'expires_at' });
    expect(summary.channels.map((c) => [c.channel, c.produced, c.received, c.duplicates])).toEqual([
      ['email', 10, 10, 0],
      ['sms', 10, 10, 0],
      ['whatsapp', 10, 10, 0],
    ]);
    // Progress is on stderr, as a line per 10 % when stderr is not a terminal.
    expect(stderr).toMatch(/producing\s+\[#+\] 100% 30\/30/);
  }, 120_000);
});
