/**
 * The value an SmsSink message carries. The runtime validates values against
 * {@link smsValueSchema} at ingest, so a bad number is refused before it reaches the bus.
 */

/** E.164: a plus, a country code that does not start with 0, at most 15 digits in all. */
export const E164_PATTERN = '^\\+[1-9][0-9]{1,14}$';
/**
 * A sender: an E.164 number, a short code (3 to 8 digits) or an alphanumeric sender ID
 * (1 to 11 letters, digits or spaces, with at least one letter: carriers refuse all-digit IDs).
 */
export const SENDER_PATTERN = '^(?:\\+[1-9][0-9]{1,14}|[0-9]{3,8}|(?=[A-Za-z0-9 ]*[A-Za-z])[A-Za-z0-9 ]{1,11})$';
/** Twilio's limit on Body; SMPP splits up to 255 segments, so this bounds both transports. */
export const MAX_TEXT_LENGTH = 1600;
/** Twilio's ValidityPeriod range, in seconds; SMPP accepts it as a relative validity_period. */
export const MAX_VALIDITY_SECONDS = 36_000;

export interface SmsValue {
  to: string;
  text: string;
  from?: string;
  validitySeconds?: number;
}

export const smsValueSchema = {
  title: 'SMS message',
  description: 'One text message to one recipient.',
  type: 'object',
  additionalProperties: false,
  required: ['to', 'text'],
  properties: {
    to: {
      type: 'string',
      pattern: E164_PATTERN,
      description: 'Recipient in E.164 form, e.g. "+33612345678".',
    },
    text: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_TEXT_LENGTH,
      description:
        'The message. Sent as GSM-7 when every character is in the GSM 03.38 alphabet (160 per SMS, 153 per segment of a long one), otherwise as UCS-2 (70, 67 per segment).',
    },
    from: {
      type: 'string',
      pattern: SENDER_PATTERN,
      description: 'Sender for this message, overriding `sms.from`: E.164 number, short code or alphanumeric ID (≤ 11 characters).',
    },
    validitySeconds: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_VALIDITY_SECONDS,
      description: 'How long the provider may keep trying to deliver before giving up (Twilio ValidityPeriod, SMPP validity_period).',
    },
  },
} as const satisfies Record<string, unknown>;

export type SenderKind = 'international' | 'shortcode' | 'alphanumeric';

export function senderKind(sender: string): SenderKind {
  if (sender.startsWith('+')) return 'international';
  if (/^[0-9]+$/.test(sender)) return 'shortcode';
  return 'alphanumeric';
}
