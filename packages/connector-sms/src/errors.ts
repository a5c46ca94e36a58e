/**
 * The SMS connector's error registry: every code an outcome, a delivery update or a thrown
 * error of this package can carry. Codes are stable: operators alert on them and dead-letter
 * headers name them.
 */
export const SmsErrorCode = {
  /** The record's value does not match {@link smsValueSchema}. Permanent. */
  INVALID_VALUE: 'OMNI_ERR_SMS_INVALID_VALUE',
  /** The provider refused the destination number (Twilio 21211/21614, SMPP ESME_RINVDSTADR…). Permanent. */
  INVALID_NUMBER: 'OMNI_ERR_SMS_INVALID_NUMBER',
  /** The recipient opted out (Twilio 21610, STOP). Permanent until they opt in again. */
  OPTED_OUT: 'OMNI_ERR_SMS_OPTED_OUT',
  /** Any other refusal of the message itself (other 4xx, other SMPP statuses). Permanent. */
  REJECTED: 'OMNI_ERR_SMS_REJECTED',
  /** The provider asks us to slow down (HTTP 429, Twilio 20429, SMPP ESME_RTHROTTLED). Retriable. */
  THROTTLED: 'OMNI_ERR_SMS_THROTTLED',
  /** The SMSC's queue is full (ESME_RMSGQFUL) or it reported a temporary fault. Retriable. */
  PROVIDER_BUSY: 'OMNI_ERR_SMS_PROVIDER_BUSY',
  /** HTTP 5xx or an unreachable provider; the message was not accepted. Retriable. */
  PROVIDER_UNAVAILABLE: 'OMNI_ERR_SMS_PROVIDER_UNAVAILABLE',
  /** No SMPP session could be bound in time; nothing was sent. Retriable. */
  NOT_CONNECTED: 'OMNI_ERR_SMS_NOT_CONNECTED',
  /**
   * The request left but no answer came back (connection lost, timeout): the provider may
   * or may not have the message. Retried only under `delivery.guarantee=at-least-once`.
   */
  OUTCOME_UNKNOWN: 'OMNI_ERR_SMS_OUTCOME_UNKNOWN',
  /**
   * Some segments of a long SMPP message were accepted and a later one failed for good;
   * resending would duplicate the accepted ones. Permanent.
   */
  PARTIAL_SEND: 'OMNI_ERR_SMS_PARTIAL_SEND',
  /** Credentials refused (SMPP bind ESME_RINVPASWD/ESME_RBINDFAIL…, Twilio 20003). Fails the task. */
  AUTH_FAILED: 'OMNI_ERR_SMS_AUTH_FAILED',
  /** The SMSC's TLS certificate did not verify (smpp.tls): nothing, not even the bind, was sent. Fails the task. */
  TLS_UNVERIFIED: 'OMNI_ERR_SMS_TLS_UNVERIFIED',
  /** The handset did not get the message (receipt UNDELIV/EXPIRED/REJECTD…, Twilio undelivered/failed). */
  UNDELIVERED: 'OMNI_ERR_SMS_UNDELIVERED',
  /** A status callback whose X-Twilio-Signature does not verify (HTTP 403). */
  WEBHOOK_SIGNATURE: 'OMNI_ERR_SMS_WEBHOOK_SIGNATURE',
  /** A status callback that is not a well-formed Twilio POST (HTTP 400/405). */
  WEBHOOK_INVALID: 'OMNI_ERR_SMS_WEBHOOK_INVALID',
  /** A status callback to a connector whose transport has none (SMPP receipts come on the session). */
  WEBHOOK_UNSUPPORTED: 'OMNI_ERR_SMS_WEBHOOK_UNSUPPORTED',
} as const;

export type SmsErrorCode = (typeof SmsErrorCode)[keyof typeof SmsErrorCode];
