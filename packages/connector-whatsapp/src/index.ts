export { WhatsAppSink } from './whatsapp-sink.ts';
export { whatsappValueSchema } from './schema.ts';
export type { WhatsAppMessage, TextMessage, TemplateMessage } from './schema.ts';
export type { WhatsAppConfig } from './config.ts';
export { WhatsAppErrors } from './errors.ts';
