/**
 * EmailSink: delivers each bus message as one e-mail over SMTP (nodemailer, pooled
 * connections). The Message-ID derives from the message id, so that retries and resends are
 * the same e-mail to receivers; SMTP 4xx replies are retried, 5xx fail the message.
 */
import { readFileSync } from 'node:fs';
import { defineSinkConnector, valueRecipients } from '@omnibus/sdk';
import { crossCheck, emailSinkConfig } from './config.ts';
import { EmailSinkTask } from './task.ts';
import { emailValueSchema } from './value.ts';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export const EmailSink = defineSinkConnector({
  className: 'EmailSink',
  aliases: ['@omnibus/connector-email/EmailSink'],
  version: manifest.version,
  description: 'Sends each message as an e-mail through an SMTP server, with pooled connections and a stable Message-ID per message.',
  config: emailSinkConfig,
  valueSchema: emailValueSchema,
  validate: crossCheck,
  // Every address the message goes to, Bcc included: none of them may be suppressed.
  recipients: valueRecipients('email', ['to', 'cc', 'bcc']),
  createTask: () => new EmailSinkTask(),
});

export { emailSinkConfig, STARTTLS_MODES, type EmailSinkConfig, type StartTlsMode } from './config.ts';
export { emailValueSchema, messageIdFor, MESSAGE_ID_HEADER, LIMITS as EMAIL_VALUE_LIMITS, type EmailValue, type EmailAttachment } from './value.ts';
export { EMAIL_ERROR_CODES, type RejectedRecipient } from './outcome.ts';
