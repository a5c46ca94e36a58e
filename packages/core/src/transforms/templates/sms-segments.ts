/**
 * How many SMS a text costs, and in which alphabet (3GPP TS 23.038 / 23.040): the counting
 * rules of the SMS connector's encoder (packages/connector-sms/src/encoding.ts), without the
 * bytes. Core cannot import a connector, so the rules are kept here too and tested against
 * the encoder's own vectors (sms-segments.test.ts).
 *
 * GSM-7 when every character is in the GSM 03.38 basic or extension table (an extension
 * character costs two septets, and a segment never ends between the two); UCS-2 otherwise
 * (a surrogate pair is never split). One SMS holds 160 septets or 70 UTF-16 units; once
 * concatenated, 153 or 67 per segment.
 */

const GSM7_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' + '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM7_EXTENSION = new Set(['\f', '^', '{', '}', '\\', '[', '~', ']', '|', '€']);

const LIMITS = { GSM7: { single: 160, concatenated: 153 }, UCS2: { single: 70, concatenated: 67 } } as const;

export type SmsEncoding = 'GSM7' | 'UCS2';

export interface SmsSegments {
  encoding: SmsEncoding;
  /** How many SMS the text is sent as (1 up to 160 septets or 70 UCS-2 units). */
  segments: number;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2). */
  units: number;
}

export function smsSegments(text: string): SmsSegments {
  // Each character's width in units: 1 or 2 septets, or 1 or 2 UTF-16 units.
  const widths: number[] = [];
  let gsm7 = true;
  for (const char of text) {
    if (GSM7_BASIC.has(char)) widths.push(1);
    else if (GSM7_EXTENSION.has(char)) widths.push(2);
    else {
      gsm7 = false;
      break;
    }
  }
  const encoding: SmsEncoding = gsm7 ? 'GSM7' : 'UCS2';
  const sizes = gsm7 ? widths : [...text].map((char) => char.length);
  const units = sizes.reduce((sum, width) => sum + width, 0);
  const { single, concatenated } = LIMITS[encoding];
  if (units <= single) return { encoding, segments: units === 0 ? 0 : 1, units };
  // Characters never straddle two segments: fill each up to the limit with whole characters.
  let segments = 1;
  let filled = 0;
  for (const width of sizes) {
    if (filled + width > concatenated) {
      segments += 1;
      filled = 0;
    }
    filled += width;
  }
  return { encoding, segments, units };
}
