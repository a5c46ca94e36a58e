/**
 * A development SMSC on npm `smpp`'s server side: it binds transceivers, acknowledges
 * submit_sm with message ids, sends SMPP 3.4 delivery receipts, and records every PDU so
 * that tests and benchmarks can check what really went over the wire (data_coding, UDH,
 * how many submit_sm were outstanding, how many times each text arrived).
 *
 * Behaviour follows SMPP 3.4: a submit_sm before a successful bind gets ESME_RINVBNDSTS,
 * enquire_link and unbind are answered, receipts are deliver_sm with esm_class 0x04 and the
 * Appendix B text. Listens on 127.0.0.1 only, over plain TCP or (with `tls`) over TLS.
 *
 * It also sends what a handset sends back: `sendMobileOriginated` delivers a mobile-originated
 * message (deliver_sm with esm_class 0, e.g. a STOP) to a bound ESME and resolves with its
 * deliver_sm_resp status.
 */
import smpp, { type Pdu, type Session } from 'smpp';
import type { AddressInfo } from 'node:net';
import { formatReceiptDate, type ReceiptStat } from '../receipt.ts';
import { CommandStatus } from '../smpp/status.ts';

export interface SmscSubmit {
  /** Which connection it came on (1 for the first accepted connection). */
  connection: number;
  sequence: number;
  sourceAddr: string;
  sourceTon: number;
  sourceNpi: number;
  destinationAddr: string;
  destTon: number;
  destNpi: number;
  esmClass: number;
  dataCoding: number;
  registeredDelivery: number;
  /** validity_period as npm smpp reads it (relative periods become the absolute time they end). */
  validityPeriod: Date | undefined;
  /** The concatenation header (UDH IEI 0x00 or sar_* TLVs), when the submit is a segment of a long message. */
  concat: { reference: number; total: number; seq: number; via: 'udh' | 'sar' } | undefined;
  /** Every UDH information element, as sent (IEI, length, data). */
  udh: Buffer[];
  /** The user data without UDH: septets (one per octet) for GSM-7, UTF-16BE for UCS-2. */
  payload: Buffer;
  /** The user data as text. */
  text: string;
  /** The command_status answered; `messageId` is set when it was 0. */
  status: number;
  messageId: string | undefined;
  /** When its submit_sm_resp went out (ms since the epoch); unset until then, and for a submit never answered. */
  answeredAt?: number;
}

export type ReceivedSubmit = Omit<SmscSubmit, 'status' | 'messageId' | 'answeredAt'>;

export interface SmscMessage {
  to: string;
  from: string;
  text: string;
  /** SMSC ids of its segments, in segment order. */
  messageIds: string[];
}

export interface SmscBind {
  connection: number;
  systemId: string;
  systemType: string;
  interfaceVersion: number;
  status: number;
  /** Whether the bind came over TLS. */
  encrypted: boolean;
}

export interface SmscDevServerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** When given, binds are checked: another system_id gets ESME_RINVSYSID, another password ESME_RINVPASWD. */
  credentials?: { systemId: string; password: string };
  /**
   * How to answer the `index`-th submit_sm received (counting from 0): with `status` (0,
   * the default, accepts it), after `delayMs` (keeps PDUs outstanding), or not at all (the
   * message is kept, as when a submit_sm_resp is lost on the way).
   */
  answerSubmit?: (submit: ReceivedSubmit, index: number) => { status?: number; delayMs?: number } | 'no-answer' | undefined;
  /** The receipt stat for an accepted segment, or null for no receipt. Default: DELIVRD when registered_delivery asks. */
  receiptStat?: (submit: SmscSubmit) => ReceiptStat | null;
  receiptDelayMs?: number;
  /** Also send the receipted_message_id and message_state TLVs (as SMPP 3.4 SMSCs may). */
  receiptTlvs?: boolean;
  /** Serve SMPP over TLS with this key and certificate (PEM) instead of plain TCP. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /**
   * Most submit_sm answered in any second on each bind, as an SMSC enforces a contracted
   * throughput per bind: submits beyond it wait in the bind's queue (in arrival order) until
   * the second allows them, so a client's window fills and its throughput is the cap. Unset: no cap.
   */
  bindRatePerSecond?: number;
  /** Refuse every bind with this command_status (e.g. ESME_RBINDFAIL 0x0D), as an SMSC that takes no more sessions. */
  refuseBinds?: number;
}

/** A mobile-originated message: from a handset's number to ours. */
export interface MobileOriginated {
  /** The handset, in international form (`+33612345678`): sent with TON 1, NPI 1, without the `+`. */
  from: string;
  /** Our number or short code. */
  to: string;
  text: string;
}

export interface SmscDevServer {
  readonly port: number;
  readonly host: string;
  readonly submits: readonly SmscSubmit[];
  readonly binds: readonly SmscBind[];
  /** Complete messages (every segment accepted), in the order they completed. */
  readonly messages: readonly SmscMessage[];
  readonly enquireLinks: number;
  /** The most submit_sm ever received and not yet answered, at any moment. */
  readonly maxOutstanding: number;
  readonly receiptsSent: number;
  readonly receiptsAcknowledged: number;
  /** How many complete messages carried exactly this text. */
  countByText(text: string): number;
  /** Texts that arrived more than once. */
  duplicates(): string[];
  /** Cuts every connection, as an SMSC restart would. */
  dropConnections(): void;
  /**
   * Sends a mobile-originated message to a bound ESME (the most recently bound) and resolves
   * with the command_status of its deliver_sm_resp; rejects when none is bound or none answers.
   */
  sendMobileOriginated(message: MobileOriginated, timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

const MESSAGE_STATE: Record<ReceiptStat, number> = {
  ENROUTE: 1,
  DELIVRD: 2,
  EXPIRED: 3,
  DELETED: 4,
  UNDELIV: 5,
  ACCEPTD: 6,
  UNKNOWN: 7,
  REJECTD: 8,
};

export async function startSmscDevServer(options: SmscDevServerOptions = {}): Promise<SmscDevServer> {
  const submits: SmscSubmit[] = [];
  const binds: SmscBind[] = [];
  const messages: SmscMessage[] = [];
  const textCounts = new Map<string, number>();
  const partial = new Map<string, Array<SmscSubmit | undefined>>();
  const sessions = new Set<Session>();
  const boundSessions: Session[] = [];
  let connections = 0;
  let enquireLinks = 0;
  let outstanding = 0;
  let maxOutstanding = 0;
  let nextMessageId = 1;
  let receiptsSent = 0;
  let receiptsAcknowledged = 0;

  const complete = (message: SmscMessage) => {
    messages.push(message);
    textCounts.set(message.text, (textCounts.get(message.text) ?? 0) + 1);
  };

  const assemble = (submit: SmscSubmit) => {
    if (!submit.concat) {
      complete({ to: submit.destinationAddr, from: submit.sourceAddr, text: submit.text, messageIds: [submit.messageId ?? ''] });
      return;
    }
    const key = `${submit.connection}|${submit.sourceAddr}|${submit.destinationAddr}|${submit.concat.reference}|${submit.concat.total}`;
    const parts = partial.get(key) ?? new Array<SmscSubmit | undefined>(submit.concat.total).fill(undefined);
    parts[submit.concat.seq - 1] = submit;
    partial.set(key, parts);
    if (parts.every(Boolean)) {
      partial.delete(key);
      const done = parts as SmscSubmit[];
      complete({
        to: submit.destinationAddr,
        from: submit.sourceAddr,
        text: done.map((p) => p.text).join(''),
        messageIds: done.map((p) => p.messageId ?? ''),
      });
    }
  };

  const sendReceipt = (session: Session, submit: SmscSubmit, stat: ReceiptStat) => {
    const now = Date.now();
    const text =
      `id:${submit.messageId} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:${formatReceiptDate(now)} ` +
      `done date:${formatReceiptDate(now)} stat:${stat} err:${stat === 'DELIVRD' ? '000' : '001'} text:${submit.text.slice(0, 20).replace(/[^\x20-\x7e]/g, '?')}`;
    const pdu = new smpp.PDU('deliver_sm', {
      source_addr_ton: submit.destTon,
      source_addr_npi: submit.destNpi,
      source_addr: submit.destinationAddr,
      dest_addr_ton: submit.sourceTon,
      dest_addr_npi: submit.sourceNpi,
      destination_addr: submit.sourceAddr,
      esm_class: 0x04,
      data_coding: 0,
      short_message: Buffer.from(text, 'latin1'),
      ...(options.receiptTlvs ? { receipted_message_id: submit.messageId, message_state: MESSAGE_STATE[stat] } : {}),
    });
    receiptsSent += 1;
    session.send(pdu, () => {
      receiptsAcknowledged += 1;
    });
  };

  const server = smpp.createServer(options.tls ? { key: options.tls.key, cert: options.tls.cert } : {}, (session) => {
    const connection = ++connections;
    let bound = false;
    /** Answers waiting for their turn under `bindRatePerSecond`, in arrival order (each with the earliest time it may go). */
    const paced: Array<{ notBefore: number; answer: () => void }> = [];
    /** When this bind's latest answers went, at most `bindRatePerSecond` of them. */
    const answeredAt: number[] = [];
    let pacer: NodeJS.Timeout | undefined;
    // At most `cap` answers in any second (a sliding window, as an SMSC counts its TPS): a late
    // timer is caught up on, never at the cost of the cap.
    const pace = () => {
      pacer = undefined;
      const cap = Math.max(1, Math.floor(options.bindRatePerSecond!));
      while (paced.length > 0) {
        const now = Date.now();
        const at = Math.max(paced[0]!.notBefore, answeredAt.length < cap ? 0 : answeredAt[answeredAt.length - cap]! + 1000);
        if (now < at) {
          pacer = setTimeout(pace, at - now);
          return;
        }
        answeredAt.push(now);
        if (answeredAt.length > cap) answeredAt.shift();
        paced.shift()!.answer();
      }
    };
    session.on('close', () => {
      clearTimeout(pacer);
      paced.length = 0;
    });
    sessions.add(session);
    session.socket.setNoDelay(true);
    session.on('close', () => {
      sessions.delete(session);
      const index = boundSessions.indexOf(session);
      if (index >= 0) boundSessions.splice(index, 1);
    });
    session.on('error', () => session.destroy());

    const onBind = (pdu: Pdu) => {
      const systemId = String(pdu.system_id ?? '');
      const password = String(pdu.password ?? '');
      let status: number = CommandStatus.ESME_ROK;
      if (bound) status = CommandStatus.ESME_RALYBND;
      else if (options.credentials && systemId !== options.credentials.systemId) status = CommandStatus.ESME_RINVSYSID;
      else if (options.credentials && password !== options.credentials.password) status = CommandStatus.ESME_RINVPASWD;
      else if (options.refuseBinds !== undefined) status = options.refuseBinds;
      const encrypted = (session.socket as { encrypted?: boolean }).encrypted === true;
      binds.push({ connection, systemId, systemType: String(pdu.system_type ?? ''), interfaceVersion: Number(pdu.interface_version), status, encrypted });
      session.send(pdu.response({ command_status: status, system_id: 'omnibus-dev-smsc' }));
      if (status === CommandStatus.ESME_ROK) {
        bound = true;
        boundSessions.push(session);
      }
    };
    session.on('bind_transceiver', onBind);
    session.on('bind_transmitter', onBind);
    session.on('enquire_link', (pdu: Pdu) => {
      enquireLinks += 1;
      session.send(pdu.response());
    });
    session.on('unbind', (pdu: Pdu) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('submit_sm', (pdu: Pdu) => {
      outstanding += 1;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
      const received = readSubmit(pdu, connection);
      const index = submits.length;
      const scripted = bound ? options.answerSubmit?.(received, index) : { status: CommandStatus.ESME_RINVBNDSTS };
      const status = scripted === 'no-answer' ? CommandStatus.ESME_ROK : (scripted?.status ?? CommandStatus.ESME_ROK);
      const messageId = status === CommandStatus.ESME_ROK ? (nextMessageId++).toString(16).padStart(10, '0') : undefined;
      const submit: SmscSubmit = { ...received, status, messageId };
      submits.push(submit);
      // Not answering emulates a response lost on the way: the SMSC has the message.
      if (scripted === 'no-answer') return assemble(submit);
      const answer = () => {
        outstanding -= 1;
        if (session.socket.destroyed) return;
        submit.answeredAt = Date.now();
        session.send(pdu.response(status === CommandStatus.ESME_ROK ? { message_id: messageId } : { command_status: status }));
        if (status !== CommandStatus.ESME_ROK) return;
        assemble(submit);
        const stat = options.receiptStat ? options.receiptStat(submit) : submit.registeredDelivery & 0x03 ? 'DELIVRD' : null;
        if (stat) setTimeout(() => !session.socket.destroyed && sendReceipt(session, submit, stat), options.receiptDelayMs ?? 0);
      };
      if (bound && options.bindRatePerSecond) {
        paced.push({ notBefore: Date.now() + (scripted?.delayMs ?? 0), answer });
        if (!pacer) pace();
      } else if (scripted?.delayMs) setTimeout(answer, scripted.delayMs);
      else answer();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    port,
    host: '127.0.0.1',
    submits,
    binds,
    messages,
    get enquireLinks() {
      return enquireLinks;
    },
    get maxOutstanding() {
      return maxOutstanding;
    },
    get receiptsSent() {
      return receiptsSent;
    },
    get receiptsAcknowledged() {
      return receiptsAcknowledged;
    },
    countByText: (text) => textCounts.get(text) ?? 0,
    duplicates: () => [...textCounts].filter(([, count]) => count > 1).map(([text]) => text),
    dropConnections: () => {
      for (const session of sessions) session.destroy();
    },
    sendMobileOriginated: (message, timeoutMs = 10_000) =>
      new Promise<number>((resolve, reject) => {
        const session = boundSessions.at(-1);
        if (!session) return reject(new Error('no ESME is bound to this SMSC'));
        const gsm = /^[\x20-\x7e\n\r]*$/.test(message.text);
        const pdu = new smpp.PDU('deliver_sm', {
          source_addr_ton: 1,
          source_addr_npi: 1,
          source_addr: message.from.replace(/^\+/, ''),
          dest_addr_ton: message.to.startsWith('+') ? 1 : 3,
          dest_addr_npi: message.to.startsWith('+') ? 1 : 0,
          destination_addr: message.to.replace(/^\+/, ''),
          esm_class: 0,
          data_coding: gsm ? 0 : 8,
          short_message: { message: message.text },
        });
        const timer = setTimeout(() => reject(new Error(`no deliver_sm_resp within ${timeoutMs} ms`)), timeoutMs);
        session.send(pdu, (response: Pdu) => {
          clearTimeout(timer);
          resolve(response.command_status);
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads a submit_sm as npm smpp decoded it, back into octets and text. */
function readSubmit(pdu: Pdu, connection: number): ReceivedSubmit {
  const dataCoding = Number(pdu.data_coding ?? 0);
  const body = pdu.short_message as { udh?: Buffer[]; message?: string | Buffer } | Buffer | undefined;
  const udh = body && !Buffer.isBuffer(body) ? (body.udh ?? []) : [];
  const message = body && !Buffer.isBuffer(body) ? body.message : body;
  const { text, payload } = decodeUserData(message, dataCoding);
  const concatIe = udh.find((ie) => ie[0] === 0x00 && ie[1] === 0x03);
  const sar =
    typeof pdu.sar_msg_ref_num === 'number'
      ? { reference: pdu.sar_msg_ref_num, total: Number(pdu.sar_total_segments), seq: Number(pdu.sar_segment_seqnum), via: 'sar' as const }
      : undefined;
  return {
    connection,
    sequence: pdu.sequence_number,
    sourceAddr: String(pdu.source_addr ?? ''),
    sourceTon: Number(pdu.source_addr_ton ?? 0),
    sourceNpi: Number(pdu.source_addr_npi ?? 0),
    destinationAddr: String(pdu.destination_addr ?? ''),
    destTon: Number(pdu.dest_addr_ton ?? 0),
    destNpi: Number(pdu.dest_addr_npi ?? 0),
    esmClass: Number(pdu.esm_class ?? 0),
    dataCoding,
    registeredDelivery: Number(pdu.registered_delivery ?? 0),
    validityPeriod: pdu.validity_period instanceof Date ? pdu.validity_period : undefined,
    concat: concatIe
      ? { reference: concatIe[2] ?? 0, total: concatIe[3] ?? 0, seq: concatIe[4] ?? 0, via: 'udh' }
      : sar,
    udh,
    payload,
    text,
  };
}

function decodeUserData(message: string | Buffer | undefined, dataCoding: number): { text: string; payload: Buffer } {
  if (message === undefined) return { text: '', payload: Buffer.alloc(0) };
  if (Buffer.isBuffer(message)) return { text: message.toString('latin1'), payload: message };
  switch (dataCoding & 0x0f) {
    case 0x08:
      return { text: message, payload: Buffer.from(message, 'utf16le').swap16() };
    case 0x03:
      return { text: message, payload: Buffer.from(message, 'latin1') };
    default:
      // The library decoded the septets through its GSM 03.38 table; its encoder gives them back.
      return { text: message, payload: smpp.encodings.ASCII.encode(message) };
  }
}
