/**
 * SMPP delivery receipts. The receipt text is the de-facto format of SMPP 3.4 Appendix B,
 * `id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E Text:…`,
 * which every SMSC bends a little (seconds in the dates, upper or lower case, missing
 * fields); the 3.4 TLVs `receipted_message_id` and `message_state`, when present, win.
 */

/** Final and intermediate states of the receipt's `stat:` field. */
export type ReceiptStat = 'DELIVRD' | 'EXPIRED' | 'DELETED' | 'UNDELIV' | 'ACCEPTD' | 'UNKNOWN' | 'REJECTD' | 'ENROUTE';

export interface Receipt {
  /** The SMSC's message id, as submit_sm_resp gave it (or as the SMSC writes it in receipts). */
  messageId: string;
  stat: ReceiptStat;
  /** `delivered` or `failed` for a final state; undefined while the message is still on its way. */
  outcome: 'delivered' | 'failed' | undefined;
  /** The `err:` field (network-specific error code), when given. */
  error: string | undefined;
  /** The `done date:` as ms since the epoch, read as UTC (the format carries no zone). */
  doneAt: number | undefined;
}

/** SMPP 3.4 §5.2.28 message_state values, by the stat word the text form uses. */
const MESSAGE_STATES: Record<number, ReceiptStat> = {
  1: 'ENROUTE',
  2: 'DELIVRD',
  3: 'EXPIRED',
  4: 'DELETED',
  5: 'UNDELIV',
  6: 'ACCEPTD',
  7: 'UNKNOWN',
  8: 'REJECTD',
};

const OUTCOMES: Record<ReceiptStat, Receipt['outcome']> = {
  DELIVRD: 'delivered',
  EXPIRED: 'failed',
  DELETED: 'failed',
  UNDELIV: 'failed',
  REJECTD: 'failed',
  ACCEPTD: undefined,
  UNKNOWN: undefined,
  ENROUTE: undefined,
};

/**
 * Reads a receipt from its text and optional TLVs; undefined when neither names a message
 * id and a state (not a receipt this connector can use).
 */
export function parseReceipt(text: string, tlvs: { receiptedMessageId?: string; messageState?: number } = {}): Receipt | undefined {
  const field = (name: string, pattern: string): string | undefined =>
    new RegExp(`(?:^|\\s)${name}:(${pattern})`, 'i').exec(text)?.[1];
  const messageId = tlvs.receiptedMessageId?.trim() || field('id', '\\S+');
  const stateFromTlv = tlvs.messageState === undefined ? undefined : MESSAGE_STATES[tlvs.messageState];
  const statText = field('stat', '[A-Za-z]+')?.toUpperCase();
  const stat = stateFromTlv ?? (statText && statText in OUTCOMES ? (statText as ReceiptStat) : undefined);
  if (!messageId || !stat) return undefined;
  return {
    messageId,
    stat,
    outcome: OUTCOMES[stat],
    error: field('err', '[0-9A-Za-z]+'),
    doneAt: parseReceiptDate(field('done date', '\\d{10}(?:\\d{2})?')),
  };
}

/** `YYMMDDhhmm` or `YYMMDDhhmmss`, taken as UTC in this century. */
export function parseReceiptDate(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const [yy, mm, dd, hh, mi, ss = '00'] = value.match(/\d\d/g) ?? [];
  const at = Date.UTC(2000 + Number(yy), Number(mm) - 1, Number(dd), Number(hh), Number(mi), Number(ss));
  return Number.isFinite(at) && Number(mm) >= 1 && Number(mm) <= 12 ? at : undefined;
}

/** Formats `at` as a receipt date (`YYMMDDhhmm`, UTC); used by the development SMSC. */
export function formatReceiptDate(at: number): string {
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getUTCFullYear() % 100)}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}`;
}

/**
 * How an SMSC writes in its receipts the id its submit_sm_resp gave: SMSCs are known to
 * answer a hex id and report it in decimal, or the reverse (Kannel's `msg-id-type`).
 */
export type ReceiptIdConversion = 'none' | 'hex-to-decimal' | 'decimal-to-hex';

/** The key a receipt for the submitted `id` is matched on: converted, lower case, no leading zeros. */
export function receiptKeyOfSubmitted(id: string, conversion: ReceiptIdConversion): string {
  const trimmed = id.trim();
  try {
    if (conversion === 'hex-to-decimal' && /^[0-9a-f]+$/i.test(trimmed)) return canonicalId(BigInt(`0x${trimmed}`).toString(10));
    if (conversion === 'decimal-to-hex' && /^[0-9]+$/.test(trimmed)) return canonicalId(BigInt(trimmed).toString(16));
  } catch {
    // Not a number after all: match it as it is.
  }
  return canonicalId(trimmed);
}

/** The key a receipt's own id is matched on. */
export function canonicalId(id: string): string {
  return id.trim().toLowerCase().replace(/^0+(?=.)/, '');
}
