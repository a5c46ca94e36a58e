/**
 * WhatsAppSink: delivers messages through the WhatsApp Business Cloud API and turns its
 * signed status webhooks into delivery updates.
 */
import { defineSinkConnector, providerProblems, valueRecipients } from '@omnibus/sdk';
import { whatsappConfigSpec } from './config.ts';
import { whatsappValueSchema } from './schema.ts';
import { WhatsAppProvidersTask } from './providers-task.ts';
import { handleWhatsAppWebhook } from './webhook.ts';

export const WHATSAPP_SINK_VERSION = '0.1.0';

export const WhatsAppSink = defineSinkConnector({
  className: 'WhatsAppSink',
  aliases: ['@omnibus/connector-whatsapp/WhatsAppSink'],
  version: WHATSAPP_SINK_VERSION,
  description:
    'Sends WhatsApp text and template messages through the WhatsApp Business Cloud API, within the per-number and per-recipient rate limits, and reports delivered/read/failed from its signed status webhooks.',
  config: whatsappConfigSpec,
  valueSchema: whatsappValueSchema,
  validate: (config) => providerProblems(whatsappConfigSpec, config),
  recipients: valueRecipients('whatsapp', ['to']),
  createTask: () => new WhatsAppProvidersTask(),
  webhook: handleWhatsAppWebhook,
});
