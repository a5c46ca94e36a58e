export { WebhookSink, webhookConfigSpec, signatureHeader, retryAfterMs, SIGNATURE_HEADER, EVENT_ID_HEADER, BATCH_HEADER, type WebhookConfig } from './sink.ts';
