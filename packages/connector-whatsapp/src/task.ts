/**
 * The sink task: sends each record as one Cloud API message, paced by the phone number's
 * throughput and by the per-recipient pair limit, and turns every answer into an outcome.
 */
import { setMaxListeners } from 'node:events';
import {
  checkValue,
  FatalConnectorError,
  type Logger,
  type ProviderAttempt,
  type SinkOutcome,
  type SinkRecord,
  type SinkTask,
  type SinkTaskContext,
} from '@omnibus/sdk';
import type { WhatsAppConfig } from './config.ts';
import { classifyGraphError, suppressionOf, WhatsAppErrors } from './errors.ts';
import { type GraphError, messagesEndpoint, sendMessage } from './graph-api.ts';
import { PairRateLimiter, TokenBucket } from './rate-limit.ts';
import { type WhatsAppMessage, whatsappValueSchema } from './schema.ts';

/** First pause of the number after a 130429 with no Retry-After; doubles while they keep coming. */
const NUMBER_BACKOFF_MS = 1_000;
const NUMBER_BACKOFF_MAX_MS = 60_000;

/** The recipient as Meta counts pairs: its digits. */
export const pairKey = (to: string): string => to.replace(/\D/g, '');

export class WhatsAppSinkTask implements SinkTask<WhatsAppConfig> {
  private logger!: Logger;
  private endpoint = '';
  private accessToken = '';
  private secrets: string[] = [];
  private requestTimeoutMs = 10_000;
  private maxInFlight = 1;
  private numberLimit!: TokenBucket;
  private pairLimit: PairRateLimiter | undefined;
  private numberStrikes = 0;
  /** Set by the first fatal answer; every later put throws it before sending anything. */
  private fatal: FatalConnectorError | undefined;
  private readonly stopping = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();

  async start(config: WhatsAppConfig, context: SinkTaskContext): Promise<void> {
    this.logger = context.logger.child({ component: 'whatsapp' });
    this.endpoint = messagesEndpoint(config['whatsapp.api.url'], config['whatsapp.api.version'], config['whatsapp.phone.number.id']);
    this.accessToken = config['whatsapp.access.token'].value();
    this.secrets = [this.accessToken, config['whatsapp.app.secret']?.value(), config['whatsapp.verify.token']?.value()].filter(
      (s): s is string => typeof s === 'string' && s.length >= 4,
    );
    this.requestTimeoutMs = config['whatsapp.request.timeout.ms'];
    this.maxInFlight = config['whatsapp.max.in.flight'];
    // Every lane waiting for a token listens for the stop.
    setMaxListeners(this.maxInFlight + 10, this.stopping.signal);
    // Every task sends from the same number, so each gets an even share of its throughput.
    const tasks = Math.max(1, Number((config as Record<string, unknown>)['tasks.max'] ?? 1) || 1);
    const rate = config['whatsapp.rate.limit.per.second'] / tasks;
    // One token per timer tick cannot go much beyond 1000/s: above 200/s, allow 5 ms worth at once.
    this.numberLimit = new TokenBucket(rate, Math.max(1, Math.floor(rate / 200)));
    const pairLimit = config['whatsapp.pair.rate.limit'];
    this.pairLimit = pairLimit > 0 ? new PairRateLimiter(pairLimit, config['whatsapp.pair.rate.limit.window.ms']) : undefined;
    this.logger.info(
      {
        endpoint: this.endpoint,
        ratePerSecond: rate,
        pairLimit: pairLimit > 0 ? `${pairLimit}/${config['whatsapp.pair.rate.limit.window.ms']}ms` : 'off',
      },
      'WhatsApp sink task started',
    );
  }

  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    if (this.fatal) throw this.fatal;
    const outcomes: SinkOutcome[] = new Array(records.length);
    let handedOver = false;

    // One lane per key keeps each recipient's messages in order while recipients go in parallel.
    const lanes = new Map<string, number[]>();
    records.forEach((record, i) => {
      const lane = lanes.get(record.key);
      if (lane) lane.push(i);
      else lanes.set(record.key, [i]);
    });
    const queue = [...lanes.values()];
    const runLanes = async (): Promise<void> => {
      for (let lane = queue.shift(); lane; lane = queue.shift()) {
        for (const i of lane) {
          const { outcome, reachedProvider } = await this.deliver(records[i] as SinkRecord);
          outcomes[i] = outcome;
          if (reachedProvider) handedOver = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.maxInFlight, queue.length) }, runLanes));

    // Lanes may have set it meanwhile (TypeScript cannot see that through the closures).
    const fatal = this.fatal as FatalConnectorError | undefined;
    if (fatal) {
      // The runtime takes a thrown fatal error as "nothing of this batch was sent": true only if no send got through.
      if (!handedOver) throw fatal;
      this.logger.error({ code: fatal.code }, 'connector failed mid-batch; the messages already sent keep their outcome');
    }
    return outcomes;
  }

  /**
   * Sends one record as one provider of a chain (several numbers or accounts): says whether
   * the Cloud API certainly did not take it. Throws the fatal error once this number cannot send.
   */
  async attempt(record: SinkRecord): Promise<ProviderAttempt> {
    if (this.fatal) throw this.fatal;
    const { outcome, reachedProvider } = await this.deliver(record);
    if (this.fatal && !reachedProvider) throw this.fatal;
    if (outcome.status === 'sent') return { result: 'taken', outcome };
    if (outcome.status === 'failed') return { result: outcome.error.code === WhatsAppErrors.INVALID_MESSAGE && !reachedProvider ? 'skipped' : 'taken', outcome };
    if (reachedProvider) return { result: 'in-doubt', outcome };
    return { result: outcome.error.code === WhatsAppErrors.TASK_STOPPED ? 'skipped' : 'not-taken', outcome };
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Sends one record. `reachedProvider`: the Cloud API may have accepted it (so it must not be sent blindly again). */
  private async deliver(record: SinkRecord): Promise<{ outcome: SinkOutcome; reachedProvider: boolean }> {
    const notSent = (outcome: SinkOutcome) => ({ outcome, reachedProvider: false });
    if (this.fatal) return notSent(this.heldBack());
    if (this.stopping.signal.aborted) return notSent(retry(WhatsAppErrors.TASK_STOPPED, 'task stopping; not sent'));

    const problems = checkValue(whatsappValueSchema, record.value);
    if (problems.length > 0) {
      const message = `not a WhatsApp text or template message: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`;
      return notSent({ status: 'failed', error: { code: WhatsAppErrors.INVALID_MESSAGE, message } });
    }
    const message = record.value as WhatsAppMessage;
    const pair = pairKey(message.to);

    const pairSlot = this.pairLimit?.admit(pair, record.id);
    const pairWait = pairSlot?.waitMs ?? 0;
    if (pairWait > 0) {
      this.logger.debug({ messageId: record.id, retryAfterMs: pairWait }, 'pair rate limit: message waits for its slot');
      return notSent(
        retry(WhatsAppErrors.PAIR_RATE_LIMITED, `pair rate limit for this recipient; its slot opens in ${pairWait} ms`, pairWait),
      );
    }

    // A message that does not reach the provider must not use up its recipient's quota.
    const giveBackPairSlot = () => pairSlot && this.pairLimit?.release(pair, pairSlot.slotAt);
    try {
      await this.numberLimit.take(this.stopping.signal);
    } catch {
      giveBackPairSlot();
      return notSent(retry(WhatsAppErrors.TASK_STOPPED, 'task stopping; not sent'));
    }
    if (this.fatal) {
      giveBackPairSlot();
      return notSent(this.heldBack());
    }

    const sending = sendMessage({
      endpoint: this.endpoint,
      accessToken: this.accessToken,
      message,
      callbackData: record.id,
      // Not aborted by stop(): a send already on the wire is let finish, so its outcome is known.
      signal: AbortSignal.timeout(this.requestTimeoutMs),
    });
    this.inFlight.add(sending);
    const result = await sending.finally(() => this.inFlight.delete(sending));

    switch (result.kind) {
      case 'accepted':
        this.numberStrikes = 0;
        this.pairLimit?.accepted(pair);
        if (!result.wamid) this.logger.warn({ messageId: record.id }, 'Cloud API accepted the message without returning its wamid');
        this.logger.debug({ messageId: record.id, wamid: result.wamid }, 'sent');
        return {
          outcome: { status: 'sent', providerId: result.wamid, ...(result.waId ? { details: { waId: result.waId } } : {}) },
          reachedProvider: true,
        };
      case 'no-answer': {
        const code = result.timedOut ? WhatsAppErrors.TIMEOUT : WhatsAppErrors.UNREACHABLE;
        const reason = result.reason;
        const doubt = result.maybeSent ? ' (the Cloud API may have accepted it)' : '';
        if (!result.maybeSent) giveBackPairSlot();
        this.logger.warn({ messageId: record.id, code, reason }, 'no answer from the Cloud API');
        return { outcome: retry(code, `${reason}${doubt}`), reachedProvider: result.maybeSent };
      }
      case 'rejected': {
        const outcome = this.onRejected(record, pair, result.httpStatus, result.error, result.retryAfterMs);
        if (outcome.status !== 'retry' || outcome.error.code !== WhatsAppErrors.PAIR_RATE_LIMITED) giveBackPairSlot();
        return { outcome, reachedProvider: false };
      }
    }
  }

  private onRejected(
    record: SinkRecord,
    pair: string,
    httpStatus: number,
    error: GraphError | undefined,
    retryAfterHintMs: number | undefined,
  ): SinkOutcome {
    const graphCode = typeof error?.code === 'number' ? error.code : undefined;
    const verdict = classifyGraphError(graphCode, httpStatus);
    const description = this.redact(describe(httpStatus, error));
    const logFields = { messageId: record.id, httpStatus, graphCode, code: verdict.code, fbtraceId: error?.fbtrace_id };

    if (verdict.action === 'fatal') {
      this.fatal ??= new FatalConnectorError(
        verdict.code,
        `WhatsApp Cloud API refused the connector's credentials or account: ${description}. ` +
          'Check whatsapp.access.token and the business account, then restart the connector; messages stay pending.',
      );
      this.logger.error(logFields, 'WhatsApp Cloud API refused the connector; no more messages are sent');
      return this.heldBack();
    }
    if (verdict.action === 'fail') {
      this.logger.info(logFields, 'message failed');
      const suppress = suppressionOf(graphCode, (record.value as { to?: string } | null)?.to);
      return { status: 'failed', error: { code: verdict.code, message: description }, ...(suppress ? { suppress } : {}) };
    }

    let retryAfterMs = retryAfterHintMs ?? verdict.retryAfterMs;
    if (verdict.scope === 'number') {
      this.numberStrikes += 1;
      const backoff = retryAfterMs ?? Math.min(NUMBER_BACKOFF_MAX_MS, NUMBER_BACKOFF_MS * 2 ** (this.numberStrikes - 1));
      this.numberLimit.pause(backoff);
      retryAfterMs = backoff;
    } else if (verdict.scope === 'pair') {
      retryAfterMs = this.pairLimit ? this.pairLimit.backOff(pair, record.id, retryAfterMs) : retryAfterMs;
    }
    this.logger.warn({ ...logFields, retryAfterMs }, 'message will be retried');
    return retry(verdict.code, description, retryAfterMs);
  }

  private heldBack(): SinkOutcome {
    return retry(WhatsAppErrors.CONNECTOR_FAILED, `not sent: ${this.fatal?.message ?? 'the connector failed'}`);
  }

  /** Provider text is echoed into traces and logs; make sure no credential rides along. */
  private redact(text: string): string {
    return this.secrets.reduce((out, secret) => out.split(secret).join('[hidden]'), text);
  }
}

function retry(code: string, message: string, retryAfterMs?: number): SinkOutcome {
  return retryAfterMs === undefined ? { status: 'retry', error: { code, message } } : { status: 'retry', error: { code, message }, retryAfterMs };
}

/** "WhatsApp error 131047 (HTTP 400): Re-engagement message — <details> [fbtrace_id …]" */
function describe(httpStatus: number, error: GraphError | undefined): string {
  if (!error) return `HTTP ${httpStatus} without a Graph error body`;
  const parts = [`WhatsApp error ${error.code ?? 'unknown'} (HTTP ${httpStatus}): ${error.message ?? 'no message'}`];
  if (error.error_data?.details) parts.push(`— ${error.error_data.details}`);
  if (error.fbtrace_id) parts.push(`[fbtrace_id ${error.fbtrace_id}]`);
  return parts.join(' ');
}
