export { WebhookSink, webhookConfigSpec, signatureHeader, retryAfterMs, SIGNATURE_HEADER, EVENT_ID_HEADER, type WebhookConfig } from './sink.ts';
