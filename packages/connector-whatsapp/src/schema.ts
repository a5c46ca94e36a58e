/**
 * The message values WhatsAppSink accepts: the Cloud API's own text and template message
 * objects, minus the envelope fields the connector sets itself (`messaging_product`,
 * `recipient_type`, `biz_opaque_callback_data`). The runtime rejects anything else at ingest,
 * so a malformed message never reaches the provider.
 */

const recipient = {
  type: 'string',
  description: "The recipient's phone number in international format (digits, optional leading +) or WhatsApp id.",
  pattern: '^\\+?[1-9][0-9]{4,14}$',
};

const context = {
  type: 'object',
  description: 'Makes the message a reply to an earlier one.',
  additionalProperties: false,
  required: ['message_id'],
  properties: {
    message_id: { type: 'string', minLength: 1, description: 'The wamid of the message replied to.' },
  },
};

const templateParameter = {
  type: 'object',
  description:
    'One template variable, as the Cloud API takes it: text, currency, date_time, image, document, video, location, payload or action, with the field of the same name.',
  required: ['type'],
  properties: {
    type: {
      enum: ['text', 'currency', 'date_time', 'image', 'document', 'video', 'location', 'payload', 'action', 'coupon_code'],
    },
    text: { type: 'string' },
    payload: { type: 'string' },
  },
  allOf: [
    { if: { properties: { type: { const: 'text' } } }, then: { required: ['text'] } },
    { if: { properties: { type: { const: 'payload' } } }, then: { required: ['payload'] } },
  ],
};

const templateComponent = {
  type: 'object',
  description: 'Values for one part of the template: its header, body, or a button (buttons need sub_type and index).',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: ['header', 'body', 'button'] },
    sub_type: { enum: ['quick_reply', 'url', 'catalog', 'flow'] },
    index: {
      description: "The button's position, 0 to 9.",
      anyOf: [
        { type: 'string', pattern: '^[0-9]$' },
        { type: 'integer', minimum: 0, maximum: 9 },
      ],
    },
    parameters: { type: 'array', items: templateParameter },
  },
  if: { properties: { type: { const: 'button' } } },
  then: { required: ['sub_type', 'index'] },
};

const textMessage = {
  type: 'object',
  title: 'Text message',
  description: 'Free-form text; Meta delivers it only within 24 h of the customer’s last message (error 131047 otherwise).',
  additionalProperties: false,
  required: ['to', 'type', 'text'],
  properties: {
    to: recipient,
    type: { const: 'text' },
    text: {
      type: 'object',
      additionalProperties: false,
      required: ['body'],
      properties: {
        body: { type: 'string', minLength: 1, maxLength: 4096, description: 'The text, up to 4096 characters.' },
        preview_url: { type: 'boolean', description: 'Render a preview of the first URL in the body.' },
      },
    },
    context,
  },
};

const templateMessage = {
  type: 'object',
  title: 'Template message',
  description: 'A pre-approved template: the only kind Meta delivers outside the 24 h customer-service window.',
  additionalProperties: false,
  required: ['to', 'type', 'template'],
  properties: {
    to: recipient,
    type: { const: 'template' },
    template: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'language'],
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 512, description: "The template's name as approved." },
        language: {
          type: 'object',
          additionalProperties: false,
          required: ['code'],
          properties: {
            code: { type: 'string', pattern: '^[a-z]{2,3}(_[A-Za-z]{2,4})?$', description: 'Language and locale, e.g. en_US.' },
            policy: { const: 'deterministic' },
          },
        },
        components: { type: 'array', items: templateComponent },
      },
    },
    context,
  },
};

export const whatsappValueSchema: Record<string, unknown> = {
  title: 'WhatsApp message',
  description: 'A WhatsApp Cloud API text or template message to one recipient.',
  oneOf: [textMessage, templateMessage],
};

export interface TextMessage {
  to: string;
  type: 'text';
  text: { body: string; preview_url?: boolean };
  context?: { message_id: string };
}

export interface TemplateMessage {
  to: string;
  type: 'template';
  template: {
    name: string;
    language: { code: string; policy?: 'deterministic' };
    components?: Array<Record<string, unknown>>;
  };
  context?: { message_id: string };
}

export type WhatsAppMessage = TextMessage | TemplateMessage;
