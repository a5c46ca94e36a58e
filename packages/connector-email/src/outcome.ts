/**
 * What an SMTP exchange means for a record. nodemailer reports replies and failures but does
 * not classify them; RFC 5321 does: 2xx accepted, 4xx try again later, 5xx never.
 */
import { FatalConnectorError, type SinkOutcome, type SuppressionRequest } from '@omnibus/sdk';

export const EMAIL_ERROR_CODES = {
  /** The value does not conform to the value schema (it bypassed ingest validation). */
  invalidValue: 'OMNI_ERR_EMAIL_INVALID_VALUE',
  /** 5xx to the message itself (DATA), or to a command about it. */
  rejected: 'OMNI_ERR_EMAIL_REJECTED',
  /** 5xx to MAIL FROM. */
  senderRejected: 'OMNI_ERR_EMAIL_SENDER_REJECTED',
  /** Every recipient was refused, at least one with 5xx. */
  recipientsRejected: 'OMNI_ERR_EMAIL_RECIPIENTS_REJECTED',
  /** The message cannot be sent as built (larger than the server's SIZE, an unreadable attachment). */
  unsendable: 'OMNI_ERR_EMAIL_UNSENDABLE',
  /** 4xx: the server asks to try again later (greylisting, a full mailbox, throttling). */
  deferred: 'OMNI_ERR_EMAIL_DEFERRED',
  /** No reply to act on: refused or dropped connection, timeout, TLS or protocol failure. */
  connection: 'OMNI_ERR_EMAIL_CONNECTION',
  /** The server refused our credentials: the connector cannot send anything. */
  authFailed: 'OMNI_ERR_EMAIL_AUTH_FAILED',
  /** The server's TLS certificate did not verify: nothing can be sent until it, or the config, changes. */
  tlsUnverified: 'OMNI_ERR_EMAIL_TLS_UNVERIFIED',
  /** STARTTLS is required (smtp.starttls) and the server did not accept it: nothing is sent, no password in clear. */
  starttlsUnavailable: 'OMNI_ERR_EMAIL_STARTTLS_UNAVAILABLE',
} as const;

/** The fields nodemailer adds to its errors (lib/smtp-connection `_formatError`). */
export interface SmtpError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
}

/** What nodemailer's SMTP pool resolves `sendMail` with. */
export interface SmtpSentInfo {
  messageId: string;
  response: string;
  accepted: Array<string | { address: string }>;
  rejected: Array<string | { address: string }>;
  rejectedErrors?: SmtpError[];
}

export interface RejectedRecipient {
  address: string;
  code: number | null;
  reason: string;
}

/** Commands whose reply speaks of this message, not of the connection or the session. */
const MESSAGE_COMMANDS = new Set(['MAIL FROM', 'RCPT TO', 'DATA']);
/** Failures nodemailer raises before or without a server reply, about the message itself. */
const MESSAGE_PROBLEMS = new Set(['EMESSAGE', 'ESTREAM', 'EENVELOPE']);

/** Node's words for a certificate that did not verify (nodemailer replaces the error's own code). */
const CERTIFICATE_PROBLEM = /certificate|altnames/i;

const isTemporary = (code: number | undefined): boolean => code !== undefined && code >= 400 && code < 500;
const isPermanent = (code: number | undefined): boolean => code !== undefined && code >= 500 && code < 600;

function rejectedRecipients(errors: SmtpError[] | undefined): RejectedRecipient[] {
  return (errors ?? []).map((e) => ({
    address: e.recipient ?? '',
    code: e.responseCode ?? null,
    reason: e.response ?? e.message,
  }));
}

const addressOf = (a: string | { address: string }): string => (typeof a === 'string' ? a : a.address);

/**
 * Enhanced status codes (RFC 3463) that say the address itself cannot take mail, whatever is
 * sent and whenever: bad mailbox (5.1.1), bad system (5.1.2), bad address syntax (5.1.3),
 * mailbox moved (5.1.6), no MX for the domain (5.1.10). A permanent refusal of the message's
 * content or of its sender says nothing about the address and is not one.
 */
const HARD_BOUNCE = /\b5\.1\.(?:1|2|3|6|10)\b/;

/** The recipients the server refused as hard bounces: the runtime suppresses them on the email channel. */
export function hardBounces(rejected: readonly RejectedRecipient[]): SuppressionRequest[] {
  return rejected.flatMap(({ address, code, reason }) => {
    const enhanced = HARD_BOUNCE.exec(reason)?.[0];
    if (!address || !isPermanent(code ?? undefined) || !enhanced) return [];
    return [{ channel: 'email' as const, address, reason: 'hard-bounce' as const, code: `${code} ${enhanced}` }];
  });
}

/** The server's own id for the message when its 250 reply names one (Postfix "queued as X", Exim "id=X"). */
export function queueIdOf(response: string): string | undefined {
  return /\bqueued as\s+([^\s;,]+)/i.exec(response)?.[1] ?? /\bid=([^\s;,]+)/i.exec(response)?.[1];
}

/** A 2xx to DATA: sent, naming any recipients the server refused on the way. */
export function sentOutcome(info: SmtpSentInfo): SinkOutcome {
  const queueId = queueIdOf(info.response);
  const rejected = rejectedRecipients(info.rejectedErrors);
  const bounced = hardBounces(rejected);
  return {
    status: 'sent',
    ...(bounced.length > 0 ? { suppress: bounced } : {}),
    providerId: info.messageId,
    details: {
      messageId: info.messageId,
      ...(queueId ? { queueId } : {}),
      response: info.response,
      accepted: info.accepted.map(addressOf),
      ...(rejected.length > 0 ? { rejected } : {}),
    },
  };
}

/**
 * A send that failed: an outcome for the record, or a {@link FatalConnectorError} when the
 * connector itself cannot send (credentials refused, a certificate that does not verify).
 */
export function failureOutcome(
  error: SmtpError,
  server: { host: string; port: number; user?: string },
): Exclude<SinkOutcome, { status: 'sent' }> | FatalConnectorError {
  const reply = error.response ?? error.message;
  const code = error.responseCode;

  if (error.code === 'EAUTH' && !isTemporary(code)) {
    const who = server.user ? ` as "${server.user}"` : '';
    return new FatalConnectorError(
      EMAIL_ERROR_CODES.authFailed,
      `SMTP authentication${who} at ${server.host}:${server.port} failed: ${reply}. Check smtp.user and smtp.password.`,
    );
  }

  if ((error.code === 'ESOCKET' || error.code === 'ETLS') && CERTIFICATE_PROBLEM.test(error.message)) {
    return new FatalConnectorError(
      EMAIL_ERROR_CODES.tlsUnverified,
      `The TLS certificate of ${server.host}:${server.port} did not verify: ${error.message}. Fix the certificate, or set smtp.tls.reject.unauthorized=false for a relay you trust.`,
    );
  }

  // With requireTLS nodemailer sends STARTTLS whether offered or not; a reply other than 220
  // means the server cannot encrypt (or someone on the path stripped it): never go on in clear.
  if (error.code === 'ETLS' && error.command === 'STARTTLS' && error.response) {
    return new FatalConnectorError(
      EMAIL_ERROR_CODES.starttlsUnavailable,
      `${server.host}:${server.port} did not accept STARTTLS (${reply}); smtp.starttls=require (the default with smtp.user) refuses to authenticate or send in clear text. ` +
        'Enable STARTTLS on the server, use implicit TLS (smtp.secure=true), or set smtp.starttls=opportunistic to accept clear text.',
    );
  }

  if (error.rejectedErrors && error.rejectedErrors.length > 0) {
    const rejected = rejectedRecipients(error.rejectedErrors);
    const message = `every recipient was refused: ${rejected.map((r) => `${r.address}: ${r.reason}`).join('; ')}`;
    // A recipient that is only deferred may be accepted on the next attempt.
    if (rejected.some((r) => isTemporary(r.code ?? undefined))) {
      return { status: 'retry', error: { code: EMAIL_ERROR_CODES.deferred, message } };
    }
    const bounced = hardBounces(rejected);
    return { status: 'failed', error: { code: EMAIL_ERROR_CODES.recipientsRejected, message }, details: { rejected }, ...(bounced.length > 0 ? { suppress: bounced } : {}) };
  }

  if (isTemporary(code)) {
    return { status: 'retry', error: { code: EMAIL_ERROR_CODES.deferred, message: `SMTP server deferred the message: ${reply}` } };
  }

  if (isPermanent(code) && MESSAGE_COMMANDS.has(error.command ?? '')) {
    const errorCode = error.command === 'MAIL FROM' ? EMAIL_ERROR_CODES.senderRejected : EMAIL_ERROR_CODES.rejected;
    return { status: 'failed', error: { code: errorCode, message: `SMTP server rejected the message: ${reply}` } };
  }

  if (code === undefined && MESSAGE_PROBLEMS.has(error.code ?? '')) {
    return { status: 'failed', error: { code: EMAIL_ERROR_CODES.unsendable, message: error.message } };
  }

  // No reply about this message: the connection, the session or the server as a whole failed.
  // The outcome may be in doubt (a reply lost after DATA); the stable Message-ID lets receivers dedupe.
  return {
    status: 'retry',
    error: { code: EMAIL_ERROR_CODES.connection, message: `SMTP ${server.host}:${server.port}: ${error.message}` },
  };
}

/** Failures to reach the server at all: nothing of the message left. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EDNS']);
/** Errors nodemailer raises before the session could take a message (connect and greeting timeouts). */
const BEFORE_SESSION = /^(Connection timeout|Greeting never received)/;
/** Commands of the session before the message itself (a failure there leaves nothing at the server). */
const SESSION_COMMANDS = new Set(['EHLO', 'HELO', 'LHLO', 'STARTTLS', 'MAIL FROM', 'RCPT TO']);

/**
 * Whether a failed send certainly left nothing at the server (so another relay may send the
 * message) or may have reached it. Any SMTP reply means the server did not take the message
 * (a 2xx would have resolved the send); a connection that could not be opened, or failed before
 * the envelope, took nothing. A connection lost or timed out later, without a reply, is in doubt.
 */
export function failureCertainty(error: SmtpError): 'not-taken' | 'in-doubt' {
  if (error.responseCode !== undefined) return 'not-taken';
  if (UNREACHABLE_CODES.has(error.code ?? '') || UNREACHABLE_CODES.has((error as { errno?: string }).errno ?? '')) return 'not-taken';
  if (/\bECONNREFUSED\b/.test(error.message)) return 'not-taken';
  if (BEFORE_SESSION.test(error.message)) return 'not-taken';
  if (SESSION_COMMANDS.has(error.command ?? '') || (error.command ?? '').startsWith('AUTH')) return 'not-taken';
  return 'in-doubt';
}
