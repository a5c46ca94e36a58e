/**
 * SMS over SMPP 3.4: every message becomes one submit_sm per segment on a bound
 * transceiver session, within a send window; receipts come back as deliver_sm on the same
 * session and are reported through the task context.
 */
import smpp, { type Pdu } from 'smpp';
import { FatalConnectorError, splitText, withConcatenationHeaders, type DeliveryUpdate, type InboundMessage, type SinkOutcome, type SinkRecord, type SplitText } from '@omnibus/sdk';
import { SmsErrorCode } from '../errors.ts';
import { parseReceipt, type ReceiptIdConversion } from '../receipt.ts';
import { failed, inDoubt, retry, sent, type SmsTransport, type TransportContext } from '../transport.ts';
import { senderKind, type SmsValue } from '../value.ts';
import { SendWindow } from '../window.ts';
import { ReceiptTracker } from './receipts.ts';
import { NoResponseError, NotSentError, SmppSession } from './session.ts';
import { classifySubmitStatus, CommandStatus, statusName, type SubmitFailure } from './status.ts';

const TON = { UNKNOWN: 0, INTERNATIONAL: 1, NETWORK_SPECIFIC: 3, ALPHANUMERIC: 5 } as const;
const NPI = { UNKNOWN: 0, ISDN: 1 } as const;
const ESM_CLASS_UDHI = 0x40;
/** esm_class bits 2-5 hold the message type; 0b0001 is an SMSC delivery receipt. */
const ESM_MESSAGE_TYPE_MASK = 0x3c;
const ESM_DELIVERY_RECEIPT = 0x04;
/** A later segment of a long message is resubmitted this many times before the message fails. */
const SEGMENT_ATTEMPTS = 6;

type SegmentResult =
  | { kind: 'accepted'; messageId: string }
  | { kind: SubmitFailure; status: number }
  | { kind: 'not-sent'; reason: string }
  | { kind: 'no-response'; reason: string };

export class SmppTransport implements SmsTransport {
  readonly #context: TransportContext;
  readonly #session: SmppSession;
  readonly #window: SendWindow;
  readonly #receipts: ReceiptTracker;
  readonly #inFlight = new Set<Promise<unknown>>();
  #reference = Math.floor(Math.random() * 0x10000);
  #reportQueue: Array<{ update: DeliveryUpdate; done(error?: Error): void }> = [];

  constructor(context: TransportContext) {
    const { config } = context;
    this.#context = context;
    this.#window = new SendWindow(config['smpp.window.size']);
    this.#receipts = new ReceiptTracker(config['smpp.receipt.id.conversion'] as ReceiptIdConversion);
    const password = config['smpp.password'];
    this.#session = new SmppSession({
      host: config['smpp.host'] ?? '',
      port: config['smpp.port'],
      tls: config['smpp.tls'] ? { ca: config['smpp.tls.ca'], rejectUnauthorized: config['smpp.tls.reject.unauthorized'] } : undefined,
      systemId: config['smpp.system.id'] ?? '',
      password: () => password?.value() ?? '',
      systemType: config['smpp.system.type'],
      requestTimeoutMs: config['smpp.request.timeout.ms'],
      enquireLinkIntervalMs: config['smpp.enquire.link.interval.ms'],
      reconnectInitialMs: config['smpp.reconnect.backoff.initial.ms'],
      reconnectMaxMs: config['smpp.reconnect.backoff.max.ms'],
      logger: context.logger,
      onDeliverSm: (pdu) => this.#onDeliverSm(pdu),
    });
  }

  start(): Promise<void> {
    return this.#session.start();
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.#session.stop();
    this.#window.close();
  }

  send(record: SinkRecord, value: SmsValue): Promise<SinkOutcome> {
    const sending = this.#send(record, value);
    this.#inFlight.add(sending);
    void sending.finally(() => this.#inFlight.delete(sending)).catch(() => undefined);
    return sending;
  }

  async #send(record: SinkRecord, value: SmsValue): Promise<SinkOutcome> {
    const { config, atLeastOnce } = this.#context;
    const encoded = this.#encode(value.text);
    try {
      await this.#session.whenBound(config['smpp.request.timeout.ms']);
    } catch (error) {
      if (error instanceof FatalConnectorError) throw error;
      return retry(SmsErrorCode.NOT_CONNECTED, (error as Error).message);
    }

    const { segments, sarReference } = encoded;
    const base = this.#submitFields(value, encoded);
    const tracked = config['smpp.registered.delivery'] ? this.#receipts.track(record.id, segments.length) : undefined;
    const accepted: string[] = [];
    for (const [index, shortMessage] of segments.entries()) {
      const sar =
        sarReference === undefined ? {} : { sar_msg_ref_num: sarReference, sar_total_segments: segments.length, sar_segment_seqnum: index + 1 };
      const result = await this.#submitSegment({ ...base, short_message: shortMessage, ...sar }, index === 0);
      if (result.kind === 'accepted') {
        accepted.push(result.messageId);
        tracked?.accepted(result.messageId);
        continue;
      }
      tracked?.abandon();
      const partial = index > 0 ? { acceptedSegmentIds: accepted, segments: segments.length } : undefined;
      if (result.kind === 'no-response') return inDoubt(atLeastOnce, `submit_sm of segment ${index + 1}: ${result.reason}`, partial);
      if (partial) {
        const why = result.kind === 'not-sent' ? result.reason : statusName(result.status);
        return failed(SmsErrorCode.PARTIAL_SEND, `segment ${index + 1} of ${segments.length} could not be sent (${why}) after ${index} were accepted`, partial);
      }
      return firstSegmentOutcome(result, config['smpp.throttle.backoff.ms']);
    }

    const providerId = accepted[0];
    this.#context.logger.debug({ messageId: record.id, providerId, segments: accepted.length }, 'submitted');
    return sent(providerId, { encoding: encoded.encoding, segments: accepted.length, ...(accepted.length > 1 ? { segmentIds: accepted } : {}) });
  }

  /**
   * The short_messages of a text. A long one takes the next concatenation reference: in
   * the UDH (8 bits) by default, in sar_msg_ref_num (16 bits) with smpp.concatenation=sar.
   */
  #encode(text: string): SplitText & { segments: Buffer[]; udh: boolean; sarReference: number | undefined } {
    const split = splitText(text);
    if (split.payloads.length === 1) return { ...split, segments: split.payloads, udh: false, sarReference: undefined };
    const reference = this.#nextReference();
    if (this.#context.config['smpp.concatenation'] === 'sar') return { ...split, segments: split.payloads, udh: false, sarReference: reference };
    return { ...split, segments: withConcatenationHeaders(split.payloads, reference), udh: true, sarReference: undefined };
  }

  #nextReference(): number {
    this.#reference = (this.#reference + 1) % 0x10000;
    return this.#reference;
  }

  #submitFields(value: SmsValue, encoded: { dataCoding: number; udh: boolean }): Record<string, unknown> {
    const { config } = this.#context;
    return {
      ...sourceAddress(value.from ?? config['sms.from']),
      dest_addr_ton: TON.INTERNATIONAL,
      dest_addr_npi: NPI.ISDN,
      destination_addr: value.to.slice(1),
      esm_class: encoded.udh ? ESM_CLASS_UDHI : 0,
      registered_delivery: config['smpp.registered.delivery'] ? 1 : 0,
      data_coding: encoded.dataCoding,
      ...(value.validitySeconds ? { validity_period: relativeValidity(value.validitySeconds) } : {}),
    };
  }

  /**
   * Submits one segment. The first segment's failures go back to the runtime (nothing of
   * the message was sent yet, so its retry policy applies); a later segment is resubmitted
   * here, since giving up would leave the earlier parts alone on the handset.
   */
  async #submitSegment(fields: Record<string, unknown>, first: boolean): Promise<SegmentResult> {
    const { config } = this.#context;
    const throttleMs = config['smpp.throttle.backoff.ms'];
    for (let attempt = 1; ; attempt++) {
      const result = await this.#submitOnce(fields);
      if (result.kind === 'accepted' || first || result.kind === 'no-response') return result;
      if (result.kind === 'invalid-number' || result.kind === 'rejected' || attempt >= SEGMENT_ATTEMPTS) return result;
      await sleep(throttleMs * 2 ** (attempt - 1));
      if (result.kind === 'not-sent') {
        try {
          await this.#session.whenBound(config['smpp.request.timeout.ms']);
        } catch (error) {
          if (error instanceof FatalConnectorError) return { kind: 'not-sent', reason: error.message };
        }
      }
    }
  }

  async #submitOnce(fields: Record<string, unknown>): Promise<SegmentResult> {
    const release = await this.#window.acquire();
    try {
      const response = await this.#session.request('submit_sm', fields);
      const status = response.command_status;
      if (status === CommandStatus.ESME_ROK) {
        this.#window.onSuccess();
        return { kind: 'accepted', messageId: String(response.message_id ?? '') };
      }
      const kind = classifySubmitStatus(status);
      if (kind === 'throttled') {
        this.#window.onThrottle(this.#context.config['smpp.throttle.backoff.ms']);
        this.#context.logger.warn({ status: statusName(status), window: this.#window.limit }, 'SMSC throttled us; slowing down');
      }
      return { kind, status };
    } catch (error) {
      if (error instanceof NotSentError) return { kind: 'not-sent', reason: error.message };
      if (error instanceof NoResponseError) return { kind: 'no-response', reason: error.message };
      throw error;
    } finally {
      release();
    }
  }

  async #onDeliverSm(pdu: Pdu): Promise<number> {
    const esmClass = Number(pdu.esm_class ?? 0);
    if ((esmClass & ESM_MESSAGE_TYPE_MASK) !== ESM_DELIVERY_RECEIPT) {
      // A mobile-originated message: handed to the runtime (STOP/START, inbound.topic), and
      // acknowledged only once it is stored; a failure to store it is thrown, so the session
      // answers with an error and the SMSC delivers it again.
      const report = this.#context.task.reportInbound;
      if (report) await report.call(this.#context.task, [mobileOriginated(pdu)]);
      else this.#context.logger.debug({ esmClass }, 'a mobile-originated message, and a runtime that takes none: acknowledged and dropped');
      return CommandStatus.ESME_ROK;
    }
    const receipt = parseReceipt(receiptText(pdu), {
      receiptedMessageId: typeof pdu.receipted_message_id === 'string' ? pdu.receipted_message_id : undefined,
      messageState: typeof pdu.message_state === 'number' ? pdu.message_state : undefined,
    });
    if (!receipt) {
      this.#context.logger.warn('a delivery receipt without message id or state; acknowledged and dropped');
      return CommandStatus.ESME_ROK;
    }
    // npm smpp emits a deliver_sm in the same tick as the submit_sm_resp read just before
    // it; let the send that awaits that response record the segment id first.
    await new Promise((resolve) => setImmediate(resolve));
    const update = this.#receipts.settle(receipt);
    if (update) await this.#report(update);
    return CommandStatus.ESME_ROK;
  }

  /**
   * Receipts that arrive together are reported in one call, and each deliver_sm is only
   * acknowledged once its update is stored: a receipt the runtime could not record is
   * answered with an error, so the SMSC sends it again.
   */
  #report(update: DeliveryUpdate): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#reportQueue.push({ update, done: (error) => (error ? reject(error) : resolve()) });
      if (this.#reportQueue.length === 1) setImmediate(() => void this.#flushReports());
    });
  }

  async #flushReports(): Promise<void> {
    const batch = this.#reportQueue;
    this.#reportQueue = [];
    try {
      await this.#context.task.reportDeliveries(batch.map((entry) => entry.update));
      for (const entry of batch) entry.done();
    } catch (error) {
      for (const entry of batch) entry.done(error as Error);
    }
  }
}

function firstSegmentOutcome(result: Exclude<SegmentResult, { kind: 'accepted' } | { kind: 'no-response' }>, throttleMs: number): SinkOutcome {
  switch (result.kind) {
    case 'not-sent':
      return retry(SmsErrorCode.NOT_CONNECTED, result.reason);
    case 'throttled':
      return retry(
        result.status === CommandStatus.ESME_RMSGQFUL ? SmsErrorCode.PROVIDER_BUSY : SmsErrorCode.THROTTLED,
        `SMSC answered ${statusName(result.status)}`,
        throttleMs,
      );
    case 'busy':
      return retry(SmsErrorCode.PROVIDER_BUSY, `SMSC answered ${statusName(result.status)}`, throttleMs);
    case 'invalid-number':
      return failed(SmsErrorCode.INVALID_NUMBER, `SMSC refused the destination: ${statusName(result.status)}`, { commandStatus: result.status });
    case 'rejected':
      return failed(SmsErrorCode.REJECTED, `SMSC refused the message: ${statusName(result.status)}`, { commandStatus: result.status });
  }
}

function sourceAddress(from: string | undefined): Record<string, unknown> {
  if (!from) return { source_addr_ton: TON.UNKNOWN, source_addr_npi: NPI.UNKNOWN, source_addr: '' };
  switch (senderKind(from)) {
    case 'international':
      return { source_addr_ton: TON.INTERNATIONAL, source_addr_npi: NPI.ISDN, source_addr: from.slice(1) };
    case 'shortcode':
      return { source_addr_ton: TON.NETWORK_SPECIFIC, source_addr_npi: NPI.UNKNOWN, source_addr: from };
    case 'alphanumeric':
      return { source_addr_ton: TON.ALPHANUMERIC, source_addr_npi: NPI.UNKNOWN, source_addr: from };
  }
}

/** SMPP relative time, `YYMMDDhhmmss000R` (§7.1.1.2). */
export function relativeValidity(seconds: number): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3_600);
  const minutes = Math.floor((seconds % 3_600) / 60);
  return `0000${two(days)}${two(hours)}${two(minutes)}${two(seconds % 60)}000R`;
}

/**
 * A deliver_sm that is not a receipt, as an inbound message. The sender in international form
 * (TON 1) gets its `+`; the text is what npm smpp decoded for its data_coding (GSM 03.38,
 * Latin-1, UCS-2). Each part of a concatenated message is its own message.
 */
export function mobileOriginated(pdu: Pdu): InboundMessage {
  const source = String(pdu.source_addr ?? '');
  const body = (pdu.short_message as { message?: unknown } | Buffer | undefined) ?? (pdu.message_payload as { message?: unknown } | undefined);
  const message = body && !Buffer.isBuffer(body) ? body.message : body;
  const text = typeof message === 'string' ? message : Buffer.isBuffer(message) ? message.toString('latin1') : '';
  return {
    channel: 'sms',
    from: Number(pdu.source_addr_ton) === TON.INTERNATIONAL && !source.startsWith('+') ? `+${source}` : source,
    to: String(pdu.destination_addr ?? ''),
    type: 'text',
    text,
    receivedAt: Date.now(),
  };
}

/** Undoes npm smpp's decoding of a receipt's short_message (or message_payload) into text. */
export function receiptText(pdu: Pdu): string {
  const body = (pdu.short_message as { message?: unknown } | Buffer | undefined) ?? (pdu.message_payload as { message?: unknown } | undefined);
  if (!body) return '';
  if (Buffer.isBuffer(body)) return body.toString('latin1');
  const message = body.message;
  if (Buffer.isBuffer(message)) return message.toString('latin1');
  if (typeof message !== 'string') return '';
  // The library reads data_coding 0 and 1 through its GSM 03.38 table ("_" becomes "§"…);
  // receipts are ASCII, so encode back to the octets and read them as such.
  const dataCoding = Number(pdu.data_coding ?? 0) & 0x0f;
  return dataCoding === 0 || dataCoding === 1 ? smpp.encodings.ASCII.encode(message).toString('latin1') : message;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
