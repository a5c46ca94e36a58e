/**
 * What SmsSink's task needs from a transport, and the outcome shapes both transports share.
 */
import type { Logger, SinkOutcome, SinkRecord, SinkTaskContext, SuppressionRequest } from '@omnibus/sdk';
import type { SmsConfig } from './config.ts';
import { SmsErrorCode } from './errors.ts';
import type { SmsValue } from './value.ts';

export interface SmsTransport {
  /** Opens connections; throws FatalConnectorError when the credentials are refused. */
  start(): Promise<void>;
  /** Sends one validated message. Throws FatalConnectorError only when nothing of it was sent. */
  send(record: SinkRecord, value: SmsValue): Promise<SinkOutcome>;
  /** Lets in-flight sends finish, then closes. */
  stop(): Promise<void>;
}

export interface TransportContext {
  config: SmsConfig;
  task: SinkTaskContext;
  logger: Logger;
  /** `delivery.guarantee=at-least-once`: a send whose outcome is unknown may be sent again. */
  atLeastOnce: boolean;
}

export const sent = (providerId: string | undefined, details?: Record<string, unknown>): SinkOutcome => ({
  status: 'sent',
  ...(providerId === undefined ? {} : { providerId }),
  ...(details ? { details } : {}),
});

export const retry = (code: string, message: string, retryAfterMs?: number): SinkOutcome => ({
  status: 'retry',
  error: { code, message },
  ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
});

export const failed = (code: string, message: string, details?: Record<string, unknown>, suppress?: SuppressionRequest[]): SinkOutcome => ({
  status: 'failed',
  error: { code, message },
  ...(details ? { details } : {}),
  ...(suppress ? { suppress } : {}),
});

/**
 * A request left and no answer came: the provider may have the message. Under
 * at-most-once (the default) it must not be sent again, so it fails with
 * OMNI_ERR_SMS_OUTCOME_UNKNOWN (and reaches the dead-letter topic, if any, for a human
 * to decide); under at-least-once it is retried.
 */
export function inDoubt(atLeastOnce: boolean, message: string, details?: Record<string, unknown>): SinkOutcome {
  const why = `${message}; the provider may have accepted the message`;
  return atLeastOnce ? retry(SmsErrorCode.OUTCOME_UNKNOWN, why) : failed(SmsErrorCode.OUTCOME_UNKNOWN, why, { inDoubt: true, ...details });
}
