/**
 * Text to SMS segments (3GPP TS 23.038 alphabets, TS 23.040 concatenation): the encoder an SMS
 * connector sends with, and the count a runtime reports before anything is sent (what a
 * template costs), from the one pair of GSM 03.38 tables so that both always agree.
 *
 * A text goes out as GSM-7 (data_coding 0) when every character is in the GSM 03.38 basic
 * table or its extension table, otherwise as UCS-2 (data_coding 8, UTF-16BE). Over SMPP,
 * GSM-7 travels unpacked, one septet per octet; the SMSC packs it for the air interface, so
 * the 140-octet air limit is 160 septets, or 153 once a 6-octet concatenation header is added.
 */

/** GSM 03.38 basic table, indexed by septet value (0x1B is the escape to the extension table). */
const GSM7_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';

/** GSM 03.38 extension table: each of these costs two septets (0x1B then the code). */
const GSM7_EXTENSION: ReadonlyMap<string, number> = new Map([
  ['\f', 0x0a],
  ['^', 0x14],
  ['{', 0x28],
  ['}', 0x29],
  ['\\', 0x2f],
  ['[', 0x3c],
  ['~', 0x3d],
  [']', 0x3e],
  ['|', 0x40],
  ['€', 0x65],
]);

const ESCAPE = 0x1b;

const GSM7_BASIC_CODES: ReadonlyMap<string, number> = new Map(
  [...GSM7_BASIC].map((char, code) => [char, code] as const).filter(([, code]) => code !== ESCAPE),
);

export const DATA_CODING_GSM7 = 0x00;
export const DATA_CODING_UCS2 = 0x08;

/** Capacity of one SMS, in septets (GSM-7) or UTF-16 code units (UCS-2). */
export const SEGMENT_LIMITS = {
  GSM7: { single: 160, concatenated: 153 },
  UCS2: { single: 70, concatenated: 67 },
} as const;

/** A concatenated message has at most 255 parts (the UDH counts them in one octet). */
export const MAX_SEGMENTS = 255;

export type TextEncoding = 'GSM7' | 'UCS2';

export interface SplitText {
  encoding: TextEncoding;
  dataCoding: typeof DATA_CODING_GSM7 | typeof DATA_CODING_UCS2;
  /** Each segment's user data, without any header: septets one per octet, or UTF-16BE. */
  payloads: Buffer[];
}

export interface EncodedSegments extends SplitText {
  /**
   * The short_message of each submit_sm. With several segments each starts with the
   * concatenation UDH (05 00 03 ref total seq) and must be sent with esm_class UDHI (0x40).
   */
  segments: Buffer[];
  /** True when the segments carry a UDH. */
  udh: boolean;
}

/** True when every character of `text` has a GSM-7 encoding (basic or extension table). */
export function isGsm7(text: string): boolean {
  for (const char of text) {
    if (!GSM7_BASIC_CODES.has(char) && !GSM7_EXTENSION.has(char)) return false;
  }
  return true;
}

/** Septets, one per octet; extension characters become the escape and their code. */
export function encodeGsm7(text: string): Buffer {
  const septets: number[] = [];
  for (const char of text) {
    const basic = GSM7_BASIC_CODES.get(char);
    if (basic !== undefined) {
      septets.push(basic);
      continue;
    }
    const extended = GSM7_EXTENSION.get(char);
    if (extended === undefined) throw new RangeError(`"${char}" has no GSM-7 encoding`);
    septets.push(ESCAPE, extended);
  }
  return Buffer.from(septets);
}

/** Splits a text into the payloads of its segments, choosing GSM-7 or UCS-2. */
export function splitText(text: string): SplitText {
  if (isGsm7(text)) {
    const septets = encodeGsm7(text);
    return { encoding: 'GSM7', dataCoding: DATA_CODING_GSM7, payloads: splitGsm7(septets) };
  }
  const ucs2 = Buffer.from(text, 'utf16le').swap16();
  return { encoding: 'UCS2', dataCoding: DATA_CODING_UCS2, payloads: splitUcs2(ucs2) };
}

/**
 * The short_messages of `text`: one when it fits a single SMS, else concatenated segments
 * with an 8-bit-reference UDH (IEI 0x00). `reference` (0-255) must differ between the long
 * messages a recipient may receive at once, so that the handset does not mix their parts.
 */
export function encodeSegments(text: string, options: { reference?: number } = {}): EncodedSegments {
  const split = splitText(text);
  if (split.payloads.length === 1) return { ...split, segments: split.payloads, udh: false };
  return { ...split, segments: withConcatenationHeaders(split.payloads, options.reference ?? 0), udh: true };
}

/** Prefixes each payload with the concatenation UDH: 05 00 03 ref total seq (IEI 0x00, 8-bit reference). */
export function withConcatenationHeaders(payloads: Buffer[], reference: number): Buffer[] {
  const total = payloads.length;
  return payloads.map((payload, index) => Buffer.concat([Buffer.from([0x05, 0x00, 0x03, reference & 0xff, total, index + 1]), payload]));
}

function splitGsm7(septets: Buffer): Buffer[] {
  const { single, concatenated } = SEGMENT_LIMITS.GSM7;
  if (septets.length <= single) return [septets];
  const parts: Buffer[] = [];
  let start = 0;
  while (start < septets.length) {
    let end = Math.min(start + concatenated, septets.length);
    // An escape and the code it introduces form one character: never part them. (No
    // extension code is itself 0x1B, so a segment ending on an escape ends mid-pair.)
    if (end < septets.length && septets[end - 1] === ESCAPE) end -= 1;
    parts.push(septets.subarray(start, end));
    start = end;
  }
  return checkCount(parts);
}

function splitUcs2(ucs2: Buffer): Buffer[] {
  const { single, concatenated } = SEGMENT_LIMITS.UCS2;
  const units = ucs2.length / 2;
  if (units <= single) return [ucs2];
  const parts: Buffer[] = [];
  let start = 0;
  while (start < units) {
    let end = Math.min(start + concatenated, units);
    // A surrogate pair is one character; a segment ending on its high half would show garbage.
    if (end < units && isHighSurrogate(ucs2.readUInt16BE((end - 1) * 2))) end -= 1;
    parts.push(ucs2.subarray(start * 2, end * 2));
    start = end;
  }
  return checkCount(parts);
}

const isHighSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff;

/** What a text costs as SMS: {@link smsSegments}'s answer. */
export interface SmsSegments {
  encoding: TextEncoding;
  /** How many SMS the text is sent as: 1 up to 160 septets (GSM-7) or 70 UTF-16 units (UCS-2), 0 for an empty text. */
  segments: number;
  /** Septets (GSM-7, an extension character counting two) or UTF-16 code units (UCS-2). */
  units: number;
}

/**
 * The alphabet and number of segments {@link splitText} would send `text` as, without building
 * the payloads, and without its limit of {@link MAX_SEGMENTS}: a template's author wants the
 * count even when it is too long to send.
 */
export function smsSegments(text: string): SmsSegments {
  const gsm7 = isGsm7(text);
  const encoding: TextEncoding = gsm7 ? 'GSM7' : 'UCS2';
  // Each character's width: 1 or 2 septets, or 1 or 2 UTF-16 units (a surrogate pair).
  const widths = [...text].map((char) => (gsm7 ? (GSM7_EXTENSION.has(char) ? 2 : 1) : char.length));
  const units = widths.reduce((sum, width) => sum + width, 0);
  const { single, concatenated } = SEGMENT_LIMITS[encoding];
  if (units <= single) return { encoding, segments: units === 0 ? 0 : 1, units };
  // As splitGsm7 and splitUcs2 cut: a character never straddles two segments.
  let segments = 1;
  let filled = 0;
  for (const width of widths) {
    if (filled + width > concatenated) {
      segments += 1;
      filled = 0;
    }
    filled += width;
  }
  return { encoding, segments, units };
}

function checkCount(parts: Buffer[]): Buffer[] {
  if (parts.length > MAX_SEGMENTS) throw new RangeError(`text needs ${parts.length} segments; at most ${MAX_SEGMENTS} can be concatenated`);
  return parts;
}
