/**
 * Provider failover in `omnibus demo`: the email connector sends through two SMTP relays
 * (`providers=relay-a,relay-b`), and relay A refuses every mail (421, as a relay shedding load
 * does) from the moment a quarter of the mail has arrived until half has. The connector moves
 * the mail to relay B (a 421 at the end of DATA means relay A certainly did not take it), relay
 * A's breaker opens, and after its cool-down a probe finds relay A well again: the mail goes
 * back to it. The demo prints that story from what each relay received, in arrival order.
 */
import { messageIdFor } from '@omnibus/connector-email';
import { startSmtpDevServer, type ReceivedMail, type SmtpDevServer } from '@omnibus/connector-email/dev-server';

export type Relay = 'relay-a' | 'relay-b';

/**
 * A breaker that opens after 3 refusals in a row and probes again after 300 ms, so that relay A
 * comes back within a run of a few seconds; the failure-rate rule is left out (a rate of 1)
 * so that the minute of refusals behind it does not keep it open once relay A is well again.
 */
const BREAKER = { 'provider.breaker.consecutive.failures': '3', 'provider.breaker.cooldown.ms': '300', 'provider.breaker.failure.rate': '1' };

export type Phase = 'before' | 'refusing' | 'after';

export interface FailoverStory {
  /** Mails relay A answered 421 while it refused. */
  refusedByA: number;
  /** Mails each relay accepted before relay A refused, while it did, and after. */
  phases: Record<Phase, Record<Relay, number>>;
  /** Mails relay B took, and mails relay A took after relay B had taken some. */
  movedToB: number;
  backOnA: number;
}

export class RelayFailover {
  private refusing = false;
  private refusalsDone = false;
  private refused = 0;
  private accepted = 0;
  private readonly phases: FailoverStory['phases'] = { before: { 'relay-a': 0, 'relay-b': 0 }, refusing: { 'relay-a': 0, 'relay-b': 0 }, after: { 'relay-a': 0, 'relay-b': 0 } };
  private relayBUsed = false;
  private aAfterB = 0;

  /** Relay A, the connector's first provider; relay B, its second. Set by {@link start}. */
  relayA!: SmtpDevServer;
  relayB!: SmtpDevServer;

  private constructor(private readonly expected: number) {}

  /**
   * Starts both relays. `expected` is the number of mails the run sends; `arrived` is told of
   * every mail a relay accepts (by its bus message id).
   */
  static async start(expected: number, arrived: (omnibusId: string | undefined) => void): Promise<RelayFailover> {
    const failover = new RelayFailover(expected);
    const accept = (relay: Relay, mail: ReceivedMail) => {
      failover.note(relay);
      failover.advance();
      arrived(mail.omnibusId);
      return undefined;
    };
    failover.relayA = await startSmtpDevServer({
      dataReply: (mail) => {
        if (failover.refusing) {
          failover.refused += 1;
          return { code: 421, message: '4.3.2 Relay A is shedding load, try another' };
        }
        return accept('relay-a', mail);
      },
    });
    failover.relayB = await startSmtpDevServer({ dataReply: (mail) => accept('relay-b', mail) });
    return failover;
  }

  private note(relay: Relay): void {
    this.phases[this.phase()][relay] += 1;
    if (relay === 'relay-b') this.relayBUsed = true;
    else if (this.relayBUsed) this.aAfterB += 1;
    this.accepted += 1;
  }

  private phase(): Phase {
    return this.refusing ? 'refusing' : this.refusalsDone ? 'after' : 'before';
  }

  /** Relay A refuses from a quarter of the mail to half of it, once. */
  private advance(): void {
    const accepted = this.accepted;
    if (!this.refusing && !this.refusalsDone && accepted >= Math.floor(this.expected / 4)) this.refusing = true;
    else if (this.refusing && accepted >= Math.floor(this.expected / 2)) {
      this.refusing = false;
      this.refusalsDone = true;
    }
  }

  /** The email connector's keys for the two relays (relay A is the connector's own smtp.* keys). */
  connectorConfig(): Record<string, string> {
    return { 'smtp.port': String(this.relayA.port), providers: 'relay-a,relay-b', 'providers.relay-b.smtp.port': String(this.relayB.port), ...BREAKER };
  }

  /** How many times the relays together accepted the mail of this bus message id. */
  timesReceived(id: string, messageIdDomain: string): number {
    const messageId = messageIdFor(id, messageIdDomain);
    return (this.relayA.countsByMessageId.get(messageId) ?? 0) + (this.relayB.countsByMessageId.get(messageId) ?? 0);
  }

  story(): FailoverStory {
    const { before, refusing, after } = this.phases;
    const phases = { before: { ...before }, refusing: { ...refusing }, after: { ...after } };
    return { refusedByA: this.refused, phases, movedToB: before['relay-b'] + refusing['relay-b'] + after['relay-b'], backOnA: this.aAfterB };
  }

  async close(): Promise<void> {
    await this.relayA?.close();
    await this.relayB?.close();
  }
}

/** The story in a few lines, for the demo's summary. */
export function formatFailover(story: FailoverStory): string[] {
  const { before, refusing, after } = story.phases;
  const split = (counts: Record<Relay, number>) => `relay A ${counts['relay-a']}, relay B ${counts['relay-b']}`;
  return [
    `Provider failover (email): relay A refused ${story.refusedByA} mails with 421 for a while; ${story.movedToB} mails moved to relay B` +
      (story.backOnA > 0 ? `, and ${story.backOnA} went back to relay A once its breakers closed.` : '; relay A was not back before the run ended.'),
    `  mails accepted before the refusals: ${split(before)}; during them: ${split(refusing)}; after them: ${split(after)}`,
  ];
}
