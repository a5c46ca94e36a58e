/**
 * A local SMTP server (npm `smtp-server`, a devDependency) for the demo, benchmarks and tests:
 * it accepts every message unless told otherwise and counts what it accepted by Message-ID,
 * so that a run can prove each message arrived exactly once. Listens on 127.0.0.1 only.
 *
 *   const smtp = await startSmtpDevServer({ port: 2525 });
 *   // … EmailSink with smtp.host=127.0.0.1, smtp.port=2525 (no STARTTLS unless `starttls`, no AUTH unless `auth` is given) …
 *   smtp.duplicates(); // []
 *   await smtp.close();
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

export interface SmtpReply {
  code: number;
  message: string;
}

export interface ReceivedMail {
  /** The Message-ID header as written, e.g. `<id@example.org>`. */
  messageId: string | undefined;
  /** X-Omnibus-Message-Id: the bus message id. */
  omnibusId: string | undefined;
  /** The Subject header as written (encoded words are left encoded). */
  subject: string | undefined;
  /** Envelope sender and the recipients the server accepted. */
  from: string;
  to: string[];
  /** Headers by lower-case name (unfolded; the last one wins). */
  headers: Map<string, string>;
  /** The message exactly as received; only with `keepMessages`. */
  raw?: Buffer;
  /** Whether the session had been upgraded with STARTTLS when the message came. */
  encrypted: boolean;
}

export interface SmtpDevServerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Only loopback addresses are accepted. Default 127.0.0.1. */
  host?: string;
  /** Require SMTP AUTH (PLAIN or LOGIN, over plain TCP) with these credentials; 535 otherwise. */
  auth?: { user: string; pass: string };
  /** Answer RCPT TO for this address with this reply instead of accepting it. */
  rcptReply?(address: string): SmtpReply | undefined;
  /** Answer the end of DATA with this reply instead of 250 (a refused message is not counted). */
  dataReply?(mail: ReceivedMail): SmtpReply | undefined;
  /** Keep every accepted message (with its raw bytes) in `messages`. Off by default to bound memory. */
  keepMessages?: boolean;
  /**
   * Offer STARTTLS: `true` with smtp-server's built-in self-signed certificate, or with this
   * key and certificate (PEM). Off by default: the server then does not offer it at all.
   */
  starttls?: boolean | { key: string | Buffer; cert: string | Buffer };
}

export interface SmtpDevServer {
  readonly host: string;
  readonly port: number;
  /** Messages answered with 250. */
  readonly acceptedCount: number;
  /** Accepted messages by Message-ID. */
  readonly countsByMessageId: ReadonlyMap<string, number>;
  /** Accepted messages, in arrival order (with `keepMessages`). */
  readonly messages: readonly ReceivedMail[];
  /** Message-IDs accepted more than once. */
  duplicates(): Array<{ messageId: string; count: number }>;
  /** AUTH commands received, and how many of them came over a connection still in clear text. */
  readonly authAttempts: number;
  readonly authAttemptsInClear: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

const replyError = (reply: SmtpReply) => Object.assign(new Error(reply.message), { responseCode: reply.code });

/** Header fields of a raw message: the lines before the first empty one, unfolded. */
function headersOf(raw: Buffer): Map<string, string> {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const block = (end === -1 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

export async function startSmtpDevServer(options: SmtpDevServerOptions = {}): Promise<SmtpDevServer> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`the SMTP dev server listens on loopback only, not on ${host}`);
  const counts = new Map<string, number>();
  const messages: ReceivedMail[] = [];
  let acceptedCount = 0;
  let authAttempts = 0;
  let authAttemptsInClear = 0;
  const starttls = options.starttls ?? false;
  const disabledCommands = [...(starttls ? [] : ['STARTTLS']), ...(options.auth ? [] : ['AUTH'])];

  const server = new SMTPServer({
    logger: false,
    banner: 'Omnibus SMTP dev server',
    disabledCommands,
    ...(typeof starttls === 'object' ? { key: starttls.key, cert: starttls.cert } : {}),
    authOptional: !options.auth,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    closeTimeout: 1000,
    onAuth(auth, session, callback) {
      authAttempts += 1;
      if (!session.secure) authAttemptsInClear += 1;
      const expected = options.auth;
      if (expected && auth.username === expected.user && auth.password === expected.pass) {
        callback(null, { user: auth.username });
      } else {
        callback(replyError({ code: 535, message: 'Authentication credentials invalid' }));
      }
    },
    onRcptTo(address, _session, callback) {
      const reply = options.rcptReply?.(address.address);
      callback(reply ? replyError(reply) : undefined);
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error) => callback(error));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const headers = headersOf(raw);
        const mail: ReceivedMail = {
          messageId: headers.get('message-id'),
          omnibusId: headers.get('x-omnibus-message-id'),
          subject: headers.get('subject'),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          headers,
          encrypted: session.secure,
        };
        const reply = options.dataReply?.(mail);
        if (reply) return callback(replyError(reply));
        acceptedCount += 1;
        if (mail.messageId) counts.set(mail.messageId, (counts.get(mail.messageId) ?? 0) + 1);
        if (options.keepMessages) messages.push({ ...mail, raw });
        callback(null, `OK: queued as DEV${acceptedCount}`);
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // After listening, a client's misbehaviour must not crash the process that hosts the server.
  server.on('error', () => undefined);
  const port = (server.server.address() as AddressInfo).port;

  return {
    host,
    port,
    get acceptedCount() {
      return acceptedCount;
    },
    countsByMessageId: counts,
    messages,
    get authAttempts() {
      return authAttempts;
    },
    get authAttemptsInClear() {
      return authAttemptsInClear;
    },
    duplicates: () => [...counts].filter(([, count]) => count > 1).map(([messageId, count]) => ({ messageId, count })),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
