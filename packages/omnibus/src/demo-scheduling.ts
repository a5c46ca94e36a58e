/**
 * Scheduling, cancel, priorities and expiry in `omnibus demo`, all on the SMS channel, beside
 * its main batch:
 * - a few dozen SMS produced with `send_at` a few seconds ahead: none may reach the SMSC before
 *   its send time, all must after (the SMSC's per-submit hook times each arrival);
 * - a dozen more, held the same way in a group of their own, cancelled whole
 *   (`DELETE /groups/{g}`) while held: they must end `cancelled` in their group's counts once
 *   due, and never reach the SMSC;
 * - a handful of `high` priority one-time passwords produced while the main batch is queued:
 *   their produce -> SMSC latency is printed beside the normal SMS's (timing only, never a failure);
 * - one SMS whose `expires_at` has passed: the produce must be refused (422 naming the field).
 */
import type { SmscDevServer } from '@omnibus/connector-sms/dev-server';

/** How far ahead the held SMS are due: past the start of the main batch, well within the run. */
export const SEND_AFTER_MS = 5_000;
const SCHEDULED = 24;
const CANCELLED = 12;
const PASSWORDS = 8;

interface Api {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
}

/** When each message first reached its server (the demo's ArrivalClock). */
interface Arrivals {
  at(id: string): number | undefined;
}

export interface SchedulingStory {
  /** SMS produced with send_at, and how far ahead. */
  held: number;
  sendAfterMs: number;
  /** Of those, SMS that reached the SMSC before their send time (must be 0), after it, never, or more than once. */
  early: number;
  onTime: number;
  missing: number;
  duplicates: number;
  /** Send time -> arrival at the SMSC, in ms. */
  latenessMs: { p50: number; p99: number; max: number };
}

export interface CancelStory {
  group: string;
  /** SMS held for later and cancelled one by one while held. */
  cancelled: number;
  /** What DELETE /groups/{g} answered: cancelled at the SMS connector. */
  answeredCancelled: number;
  /** GET /groups/{group} once they came due: counts by state at the SMS connector. */
  states: Record<string, number>;
  /** Cancelled SMS that reached the SMSC anyway (must be 0). */
  reachedSmsc: number;
}

export interface PriorityStory {
  /** `high` one-time passwords produced while the main SMS batch was queued. */
  high: number;
  arrived: number;
  /** Produce request -> arrival at the SMSC, in ms: the passwords, and the main batch's normal SMS. */
  highLatencyMs: { p50: number; p99: number };
  normalLatencyMs: { p50: number; p99: number };
}

export interface ExpiryStory {
  /** The HTTP status of a produce whose expires_at had passed (422 expected), and the field its answer named. */
  status: number;
  field?: string;
  message?: string;
  /** Whether GET /messages/{id} found it afterwards (must not). */
  stored: boolean;
}

/** The SMS texts name their message id (`Ref <id>`), as the main batch's do: the SMSC counts by text. */
const text = (body: string, id: string) => `Omnibus: ${body} Ref ${id}`;

export class SmsScheduling {
  readonly scheduledGroup: string;
  readonly cancelGroup: string;
  readonly passwordGroup: string;
  /** Held SMS and their send time. */
  private readonly scheduled: Array<{ id: string; sendAt: number }> = [];
  private readonly cancelled: string[] = [];
  private readonly passwords: string[] = [];
  private readonly producedAt = new Map<string, number>();
  /** The SMSC counts by text: each SMS's text, by id. */
  readonly texts = new Map<string, string>();
  private answeredCancelled = 0;
  private cancelStates: Record<string, number> = {};
  private expiry: ExpiryStory = { status: 0, stored: false };

  constructor(
    private readonly runId: string,
    private readonly topic: string,
    private readonly connector: string,
  ) {
    this.scheduledGroup = `${runId}.sms-scheduled`;
    this.cancelGroup = `${runId}.sms-cancelled`;
    this.passwordGroup = `${runId}.sms-otp`;
  }

  /** Whether an SMS (by the id its text names) is one of these, not of the main batch. */
  owns(id: string | undefined): boolean {
    return id !== undefined && (id.startsWith(`${this.runId}.sms-scheduled.`) || id.startsWith(`${this.runId}.sms-cancelled.`) || id.startsWith(`${this.runId}.sms-otp.`));
  }

  private item(kind: string, n: number, body: string, extra: Record<string, unknown>) {
    const id = `${this.runId}.sms-${kind}.${String(n + 1).padStart(4, '0')}`;
    const to = `+3377${String(1_000_000 + n * 37 + kind.length * 100_000).slice(-7)}`;
    const value = { to, text: text(body, id) };
    this.texts.set(id, value.text);
    return { id, key: to, value, ...extra };
  }

  /** Produces the held SMS to cancel and cancels them, then those to send, then tries an expired one. */
  async produceHeld(api: Api): Promise<void> {
    const held = async (group: string, kind: string, body: (n: number) => string, count: number) => {
      const sendAt = Date.now() + SEND_AFTER_MS;
      const messages = Array.from({ length: count }, (_, n) => this.item(kind, n, body(n), { send_at: sendAt }));
      const response = await api.call('POST', `/topics/${encodeURIComponent(this.topic)}/messages`, { group, messages });
      if (response.status !== 202) throw new Error(`producing held SMS failed: HTTP ${response.status} ${JSON.stringify(response.body)}`);
      const acknowledged = (response.body as { messages: Array<{ id: string; send_at?: number }> }).messages;
      for (const m of acknowledged) if (m.send_at === undefined) throw new Error(`SMS ${m.id} was not held although its send_at is ahead`);
      return acknowledged.map((m) => ({ id: m.id, sendAt: m.send_at! }));
    };
    // The campaign is called off while held, at once (well before it is due): the group's
    // cancellation is stored now, and the sink settles each message when it comes due.
    this.cancelled.push(...(await held(this.cancelGroup, 'cancelled', (n) => `flash sale: 20% off until midnight (${n}).`, CANCELLED)).map((m) => m.id));
    const answer = await api.call('DELETE', `/groups/${encodeURIComponent(this.cancelGroup)}`);
    if (answer.status !== 200) throw new Error(`cancelling group ${this.cancelGroup} failed: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
    this.answeredCancelled = (answer.body as { connectors: Record<string, { cancelled: number }> }).connectors[this.connector]?.cancelled ?? 0;
    this.scheduled.push(...(await held(this.scheduledGroup, 'scheduled', (n) => `your appointment is tomorrow at ${9 + (n % 8)}:00.`, SCHEDULED)));
    const expired = this.item('expired', 0, 'your code expired.', { expires_at: Date.now() - 60_000 });
    this.texts.delete(expired.id);
    const refused = await api.call('POST', `/topics/${encodeURIComponent(this.topic)}/messages`, { messages: [expired] });
    const body = refused.body as { message?: string; errors?: Array<{ field?: string; message?: string }> } | undefined;
    const stored = (await api.call('GET', `/messages/${encodeURIComponent(expired.id)}`)).status !== 404;
    const first = body?.errors?.[0];
    this.expiry = { status: refused.status, ...(first?.field ? { field: first.field } : {}), ...(first?.message ? { message: first.message } : {}), stored };
  }

  /** Produces the `high` one-time passwords (while the main batch is queued). */
  async producePasswords(api: Api): Promise<void> {
    const messages = Array.from({ length: PASSWORDS }, (_, n) => this.item('otp', n, `your one-time password is ${String(100_000 + n * 7_919).slice(-6)}.`, { priority: 'high' }));
    const at = Date.now();
    for (const m of messages) this.producedAt.set(m.id, at);
    const response = await api.call('POST', `/topics/${encodeURIComponent(this.topic)}/messages`, { group: this.passwordGroup, messages });
    if (response.status !== 202) throw new Error(`producing one-time passwords failed: HTTP ${response.status} ${JSON.stringify(response.body)}`);
    this.passwords.push(...messages.map((m) => m.id));
  }

  /** The delivery events these SMS must have: `sent` and `delivered` at the SMS connector for those sent. */
  expectedEvents(): Array<{ messageId: string; connector: string; state: string }> {
    const ids = [...this.scheduled.map((s) => s.id), ...this.passwords];
    return ids.flatMap((messageId) => ['sent', 'delivered'].map((state) => ({ messageId, connector: this.connector, state })));
  }

  /** Waits until the held and priority SMS reached the SMSC and the cancelled ones are counted `cancelled`, or the deadline. */
  async waitUntilSettled(api: Api, arrivals: Arrivals, deadline: number): Promise<void> {
    for (;;) {
      const response = await api.call('GET', `/groups/${encodeURIComponent(this.cancelGroup)}`);
      // 404 until they come due: a group counts a held message once it is released.
      if (response.status === 200) this.cancelStates = (response.body as { connectors?: Record<string, Record<string, number>> }).connectors?.[this.connector] ?? {};
      const arrived = [...this.scheduled.map((s) => s.id), ...this.passwords].every((id) => arrivals.at(id) !== undefined);
      if ((arrived && (this.cancelStates.cancelled ?? 0) === this.cancelled.length) || Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  stories(smsc: SmscDevServer, arrivals: Arrivals, normalLatencyMs: { p50: number; p99: number }): { scheduling: SchedulingStory; cancel: CancelStory; priority: PriorityStory; expiry: ExpiryStory } {
    const lateness: number[] = [];
    let early = 0;
    let missing = 0;
    let duplicates = 0;
    for (const { id, sendAt } of this.scheduled) {
      const count = smsc.countByText(this.texts.get(id)!);
      const at = arrivals.at(id);
      if (count === 0 || at === undefined) missing += 1;
      else if (at < sendAt) early += 1;
      else lateness.push(at - sendAt);
      if (count > 1) duplicates += 1;
    }
    lateness.sort((a, b) => a - b);
    const latencies = this.passwords.flatMap((id) => {
      const at = arrivals.at(id);
      return at === undefined ? [] : [at - this.producedAt.get(id)!];
    });
    latencies.sort((a, b) => a - b);
    return {
      scheduling: {
        held: this.scheduled.length,
        sendAfterMs: SEND_AFTER_MS,
        early,
        onTime: lateness.length,
        missing,
        duplicates,
        latenessMs: { p50: percentile(lateness, 0.5), p99: percentile(lateness, 0.99), max: lateness.at(-1) ?? 0 },
      },
      cancel: {
        group: this.cancelGroup,
        cancelled: this.cancelled.length,
        answeredCancelled: this.answeredCancelled,
        states: { ...this.cancelStates },
        reachedSmsc: this.cancelled.filter((id) => smsc.countByText(this.texts.get(id)!) > 0).length,
      },
      priority: {
        high: this.passwords.length,
        arrived: latencies.length,
        highLatencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
        normalLatencyMs,
      },
      expiry: this.expiry,
    };
  }
}

export function assessScheduling(stories: { scheduling: SchedulingStory; cancel: CancelStory; priority: PriorityStory; expiry: ExpiryStory }): string[] {
  const { scheduling, cancel, priority, expiry } = stories;
  const problems: string[] = [];
  if (scheduling.early > 0) problems.push(`scheduling: ${scheduling.early} of ${scheduling.held} held SMS reached the SMSC before their send_at`);
  if (scheduling.missing > 0) problems.push(`scheduling: ${scheduling.missing} of ${scheduling.held} held SMS never reached the SMSC`);
  if (scheduling.duplicates > 0) problems.push(`scheduling: ${scheduling.duplicates} held SMS reached the SMSC more than once`);
  if (cancel.reachedSmsc > 0) problems.push(`cancel: ${cancel.reachedSmsc} of ${cancel.cancelled} cancelled SMS reached the SMSC`);
  if ((cancel.states.cancelled ?? 0) !== cancel.cancelled) {
    problems.push(`cancel: GET /groups/${cancel.group} counts ${JSON.stringify(cancel.states)} at the SMS connector, not ${cancel.cancelled} cancelled`);
  }
  if (priority.arrived < priority.high) problems.push(`priorities: ${priority.high - priority.arrived} of ${priority.high} high-priority SMS never reached the SMSC`);
  if (expiry.stored) problems.push('expiry: a message refused for its past expires_at was stored');
  if (expiry.status !== 422 || expiry.field !== 'expires_at') {
    problems.push(`expiry: a produce with an expires_at in the past was answered HTTP ${expiry.status}${expiry.field ? ` naming ${expiry.field}` : ''}, not 422 naming expires_at`);
  }
  return problems;
}

export function formatScheduling(stories: { scheduling: SchedulingStory; cancel: CancelStory; priority: PriorityStory; expiry: ExpiryStory }): string[] {
  const { scheduling: s, cancel: c, priority: p, expiry: e } = stories;
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  return [
    `Scheduling: ${s.held} SMS held with send_at = produce + ${s.sendAfterMs / 1000} s; ${s.early} reached the SMSC early, ${s.onTime} after their send time` +
      `${s.missing > 0 ? `, ${s.missing} never` : ''}; hand-off lateness p50 ${ms(s.latenessMs.p50)}, p99 ${ms(s.latenessMs.p99)}.`,
    `Cancel: ${c.cancelled} held SMS cancelled with DELETE /groups/{g} (answer: ${c.answeredCancelled} cancelled); once due, GET /groups/${c.group} counts ${formatCounts(c.states)}; ${c.reachedSmsc} reached the SMSC.`,
    `Priorities: ${p.high} high-priority one-time passwords produced mid-batch: produce -> SMSC p50 ${ms(p.highLatencyMs.p50)}, p99 ${ms(p.highLatencyMs.p99)} ` +
      `(the batch's normal SMS: p50 ${ms(p.normalLatencyMs.p50)}, p99 ${ms(p.normalLatencyMs.p99)}).`,
    `Expiry: a produce whose expires_at had passed was answered HTTP ${e.status}${e.field ? ` (${e.field} ${e.message ?? ''})` : ''}; ${e.stored ? 'it was stored all the same' : 'nothing was stored'}.`,
  ];
}

const formatCounts = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([state, n]) => `${state} ${n}`)
    .join(', ') || 'nothing';

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
