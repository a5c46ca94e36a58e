/**
 * The message value EmailSink accepts, as a JSON Schema (the runtime rejects other values at
 * ingest with it) and as a type, and how one value becomes one nodemailer message.
 */
import type { SinkRecord } from '@omnibus/sdk';
import type Mail from 'nodemailer/lib/mailer/index.js';

export const LIMITS = {
  recipientsPerField: 100,
  subjectChars: 998,
  bodyChars: 2_000_000,
  headers: 50,
  headerValueChars: 998,
  attachments: 10,
  /** Base64 characters of one attachment (about 7.5 MB once decoded). */
  attachmentBase64Chars: 10 * 1024 * 1024,
  attachmentTextChars: 2_000_000,
} as const;

/**
 * Headers a value may not set: the connector writes them itself (Message-ID must stay the one
 * derived from the bus id) or nodemailer derives them from the value's fields.
 */
export const RESERVED_HEADERS = [
  'From',
  'Sender',
  'To',
  'Cc',
  'Bcc',
  'Reply-To',
  'Subject',
  'Date',
  'Message-ID',
  'X-Omnibus-Message-Id',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
] as const;

/** A regex alternative matching `word` in any letter case (JSON Schema patterns take no flags). */
const anyCase = (word: string) =>
  [...word].map((c) => (c.toLowerCase() !== c.toUpperCase() ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c)).join('');

const NO_LINE_BREAK = '^[^\\r\\n]*$';

const address = {
  type: 'string',
  minLength: 3,
  maxLength: 320,
  // Up to the first @, then the rest: the same strings as `^[^\\r\\n]*@[^\\r\\n]+$`, in linear time (that
  // one backtracks over every @ and took seconds on a line of them).
  pattern: '^[^\\r\\n@]*@[^\\r\\n]+$',
  description: 'An e-mail address, bare (`ada@example.org`) or with a display name (`Ada Lovelace <ada@example.org>`).',
};

const addressList = (what: string) => ({
  description: `${what}: one address or an array of them.`,
  anyOf: [address, { type: 'array', items: address, minItems: 1, maxItems: LIMITS.recipientsPerField }],
});

export const emailValueSchema: Record<string, unknown> = {
  title: 'EmailSink message value',
  description: 'One e-mail. `to` and `subject` are required, with a plain-text body, an HTML body or both.',
  type: 'object',
  additionalProperties: false,
  required: ['to', 'subject'],
  anyOf: [
    { properties: { text: true }, required: ['text'] },
    { properties: { html: true }, required: ['html'] },
  ],
  properties: {
    to: addressList('Recipients'),
    cc: addressList('Carbon-copy recipients'),
    bcc: addressList('Blind carbon-copy recipients (in the envelope only, not in the headers)'),
    from: { ...address, description: 'Sender; overrides the connector\'s `email.from`.' },
    reply_to: addressList('Where replies go (Reply-To)'),
    subject: { type: 'string', maxLength: LIMITS.subjectChars, pattern: NO_LINE_BREAK, description: 'Subject line.' },
    text: { type: 'string', maxLength: LIMITS.bodyChars, description: 'Plain-text body.' },
    html: { type: 'string', maxLength: LIMITS.bodyChars, description: 'HTML body.' },
    headers: {
      type: 'object',
      description: `Extra headers, e.g. \`{"List-Unsubscribe": "<https://example.org/u/1>"}\`; not ${RESERVED_HEADERS.join(', ')}.`,
      maxProperties: LIMITS.headers,
      propertyNames: {
        pattern: `^(?!(?:${RESERVED_HEADERS.map(anyCase).join('|')})$)[A-Za-z0-9!#$%&'*+.^_\`|~-]{1,76}$`,
      },
      additionalProperties: { type: 'string', maxLength: LIMITS.headerValueChars, pattern: NO_LINE_BREAK },
    },
    attachments: {
      type: 'array',
      description: 'Files attached to the message.',
      maxItems: LIMITS.attachments,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['filename'],
        oneOf: [
          { properties: { content: true }, required: ['content'] },
          { properties: { text: true }, required: ['text'] },
        ],
        properties: {
          filename: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^\\r\\n/\\\\]+$', description: 'File name shown to the recipient.' },
          content: {
            type: 'string',
            maxLength: LIMITS.attachmentBase64Chars,
            pattern: '^[A-Za-z0-9+/]*={0,2}$',
            description: 'The file\'s bytes, base64-encoded on one line.',
          },
          text: { type: 'string', maxLength: LIMITS.attachmentTextChars, description: 'The file\'s content as UTF-8 text (instead of `content`).' },
          contentType: {
            type: 'string',
            pattern: '^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?:\\s*;[^\\r\\n]*)?$',
            description: 'MIME type, e.g. `application/pdf`; guessed from the file name when absent.',
          },
        },
      },
    },
  },
};

type AddressList = string | string[];

export interface EmailAttachment {
  filename: string;
  content?: string;
  text?: string;
  contentType?: string;
}

export interface EmailValue {
  to: AddressList;
  subject: string;
  text?: string;
  html?: string;
  from?: string;
  cc?: AddressList;
  bcc?: AddressList;
  reply_to?: AddressList;
  headers?: Record<string, string>;
  attachments?: EmailAttachment[];
}

/** The header that carries the bus message id verbatim, for receivers and for support. */
export const MESSAGE_ID_HEADER = 'X-Omnibus-Message-Id';

/**
 * `<id@domain>` for a bus message id. Characters that a Message-ID's left part may not hold
 * (RFC 5322 dot-atom) are percent-encoded, so that any producer-supplied id maps to one
 * valid, stable Message-ID.
 */
export function messageIdFor(id: string, domain: string): string {
  const local = id.replace(/[^A-Za-z0-9!#$&'*+\-/=?^_`{|}~]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
  return `<${local}@${domain}>`;
}

/** The nodemailer message for a record whose value conforms to {@link emailValueSchema}. */
export function mailFor(record: SinkRecord<EmailValue>, defaults: { from: string; messageIdDomain: string }): Mail.Options {
  const value = record.value;
  return {
    from: value.from ?? defaults.from,
    to: value.to,
    cc: value.cc,
    bcc: value.bcc,
    replyTo: value.reply_to,
    subject: value.subject,
    text: value.text,
    html: value.html,
    messageId: messageIdFor(record.id, defaults.messageIdDomain),
    // The ingestion time: the same Date header on every attempt, like the Message-ID.
    date: new Date(record.timestamp),
    headers: { ...value.headers, [MESSAGE_ID_HEADER]: record.id },
    attachments: value.attachments?.map((a) => ({
      filename: a.filename,
      content: a.content !== undefined ? Buffer.from(a.content, 'base64') : a.text,
      contentType: a.contentType,
    })),
  };
}
