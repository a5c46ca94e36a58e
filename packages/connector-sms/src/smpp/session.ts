/**
 * One SMPP 3.4 transceiver session that stays bound: connect, bind_transceiver, keep alive
 * with enquire_link, rebind with exponential backoff whenever the link drops. npm `smpp`
 * does the PDU framing; it has no response timeout, no reconnection and no bind state, so
 * those live here.
 */
import { isIP } from 'node:net';
import smpp, { type Pdu, type Session } from 'smpp';
import { FatalConnectorError, type Logger } from '@omnibus/sdk';
import { SmsErrorCode } from '../errors.ts';
import { CommandStatus, FATAL_BIND_STATUSES, statusName } from './status.ts';

/** SMPP 3.4: the library would otherwise announce 5.0 (0x50). */
const INTERFACE_VERSION_3_4 = 0x34;

export interface SmppSessionOptions {
  host: string;
  port: number;
  /** Connect over TLS, verifying the SMSC's certificate unless `rejectUnauthorized` is false. */
  tls?: { ca?: string; rejectUnauthorized: boolean };
  systemId: string;
  /** Read only when binding, so that the secret never sits in an object that may be logged. */
  password: () => string;
  systemType: string;
  requestTimeoutMs: number;
  enquireLinkIntervalMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  logger: Logger;
  /** Handles an incoming deliver_sm; resolves to the command_status of the deliver_sm_resp. */
  onDeliverSm(pdu: Pdu): Promise<number>;
}

/** The request was never written: the SMSC cannot have acted on it. */
export class NotSentError extends Error {}

/** The request was written but no answer came: the SMSC may or may not have acted on it. */
export class NoResponseError extends Error {}

interface Pending {
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

interface Connection {
  session: Session;
  pending: Map<number, Pending>;
  bound: boolean;
}

export class SmppSession {
  readonly #options: SmppSessionOptions;
  readonly #logger: Logger;
  #connection: Connection | undefined;
  #fatal: FatalConnectorError | undefined;
  #stopped = false;
  #failedAttempts = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #enquireTimer: NodeJS.Timeout | undefined;
  #boundWaiters = new Set<{ resolve(): void; reject(error: Error): void }>();
  #firstAttempt: { resolve(): void; reject(error: Error): void } | undefined;

  constructor(options: SmppSessionOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ smsc: `${options.host}:${options.port}`, systemId: options.systemId });
  }

  get bound(): boolean {
    return this.#connection?.bound === true;
  }

  /**
   * Makes the first connection attempt. Resolves once bound, or once the attempt failed in
   * a way a later attempt may cure (reconnection then continues in the background); rejects
   * with a {@link FatalConnectorError} when the SMSC refuses the credentials.
   */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#firstAttempt = { resolve, reject };
      this.#connect();
    });
  }

  /** Resolves when the session is bound; rejects with the fatal error, or NotSentError after `timeoutMs`. */
  whenBound(timeoutMs: number): Promise<void> {
    if (this.#fatal) return Promise.reject(this.#fatal);
    if (this.#stopped) return Promise.reject(new NotSentError('the SMPP session is stopped'));
    if (this.bound) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          this.#boundWaiters.delete(waiter);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          this.#boundWaiters.delete(waiter);
          reject(error);
        },
      };
      const timer = setTimeout(() => waiter.reject(new NotSentError(`no SMPP session bound within ${timeoutMs} ms`)), timeoutMs);
      this.#boundWaiters.add(waiter);
    });
  }

  /**
   * Sends a request PDU on the bound session and resolves with its response (whatever its
   * command_status). Rejects with NotSentError when nothing was written, NoResponseError
   * when the answer did not come in time or the link dropped first.
   */
  request(command: string, fields: Record<string, unknown>, timeoutMs = this.#options.requestTimeoutMs): Promise<Pdu> {
    const connection = this.#connection;
    if (!connection?.bound) return Promise.reject(new NotSentError('the SMPP session is not bound'));
    return this.#send(connection, command, fields, timeoutMs);
  }

  /** Unbinds politely, then closes; pending requests end with NoResponseError. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#enquireTimer);
    for (const waiter of [...this.#boundWaiters]) waiter.reject(new NotSentError('the SMPP session is stopped'));
    this.#firstAttempt?.resolve();
    this.#firstAttempt = undefined;
    const connection = this.#connection;
    if (!connection) return;
    if (connection.bound) {
      await this.#send(connection, 'unbind', {}, Math.min(this.#options.requestTimeoutMs, 2_000)).catch(() => undefined);
    }
    await closeSession(connection.session);
  }

  #connect(): void {
    if (this.#stopped || this.#fatal) return;
    const { host, port, tls } = this.#options;
    const session = smpp.connect(
      tls
        ? {
            host,
            port,
            tls: true,
            rejectUnauthorized: tls.rejectUnauthorized,
            ...(tls.ca ? { ca: tls.ca } : {}),
            // SNI carries names only; the certificate is checked against the host either way.
            ...(isIP(host) ? {} : { servername: host }),
          }
        : { host, port },
    );
    // PDUs are small and answered one by one: Nagle's algorithm would hold them back.
    session.socket.setNoDelay(true);
    const connection: Connection = { session, pending: new Map(), bound: false };
    this.#connection = connection;
    // node-smpp has no connect timeout of its own.
    const connectTimer = setTimeout(() => session.destroy(), this.#options.requestTimeoutMs);

    session.on('error', (error: Error & { code?: string }) => {
      if (tls && isCertificateProblem(error)) {
        // Retrying cannot help, and the operator must know: the bind password was not sent.
        this.#fail(
          new FatalConnectorError(
            SmsErrorCode.TLS_UNVERIFIED,
            `The TLS certificate of SMSC ${host}:${port} did not verify (${error.code ?? error.message}); nothing was sent. ` +
              'Trust its authority with smpp.tls.ca, or fix the certificate.',
          ),
        );
        session.destroy();
        return;
      }
      this.#logger.warn({ error: error.message, code: error.code }, 'SMPP connection error');
      // A PDU the library cannot parse leaves its reader stuck: start over on a new link.
      session.destroy();
    });
    session.on('close', () => {
      clearTimeout(connectTimer);
      this.#onClose(connection);
    });
    // Over TLS, bind once the handshake has verified the SMSC: never hand the password to an unverified peer.
    session.on(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      this.#bind(connection);
    });
    session.on('deliver_sm', (pdu: Pdu) => void this.#answerDeliverSm(connection, pdu));
    session.on('enquire_link', (pdu: Pdu) => void session.send(pdu.response()));
    session.on('unbind', (pdu: Pdu) => {
      this.#logger.info('SMSC unbound the session; rebinding');
      session.send(pdu.response());
      session.close();
    });
    session.on('unknown', (pdu: Pdu) => void session.send(pdu.response()));
  }

  #bind(connection: Connection): void {
    const { systemId, systemType, password } = this.#options;
    const fields = { system_id: systemId, password: password(), system_type: systemType, interface_version: INTERFACE_VERSION_3_4 };
    this.#send(connection, 'bind_transceiver', fields, this.#options.requestTimeoutMs).then(
      (response) => {
        const status = response.command_status;
        if (status === CommandStatus.ESME_ROK) return this.#onBound(connection);
        if (FATAL_BIND_STATUSES.has(status)) {
          const { host, port } = this.#options;
          this.#fail(
            new FatalConnectorError(
              SmsErrorCode.AUTH_FAILED,
              `SMSC ${host}:${port} refused to bind system_id "${systemId}": ${statusName(status)}. Check smpp.system.id, smpp.password and smpp.system.type.`,
            ),
          );
        } else {
          this.#logger.warn({ status: statusName(status) }, 'SMSC refused the bind; will retry');
        }
        connection.session.destroy();
      },
      (error: Error) => {
        this.#logger.warn({ error: error.message }, 'bind_transceiver got no answer');
        connection.session.destroy();
      },
    );
  }

  #onBound(connection: Connection): void {
    if (this.#stopped || connection !== this.#connection) {
      connection.session.destroy();
      return;
    }
    connection.bound = true;
    this.#failedAttempts = 0;
    this.#logger.info('SMPP session bound (transceiver)');
    this.#firstAttempt?.resolve();
    this.#firstAttempt = undefined;
    for (const waiter of [...this.#boundWaiters]) waiter.resolve();
    this.#startEnquireLinks(connection);
  }

  #startEnquireLinks(connection: Connection): void {
    clearInterval(this.#enquireTimer);
    let inFlight = false;
    this.#enquireTimer = setInterval(() => {
      if (inFlight || !connection.bound) return;
      inFlight = true;
      this.#send(connection, 'enquire_link', {}, this.#options.requestTimeoutMs)
        .catch((error: Error) => {
          this.#logger.warn({ error: error.message }, 'enquire_link unanswered; dropping the session');
          connection.session.destroy();
        })
        .finally(() => {
          inFlight = false;
        });
    }, this.#options.enquireLinkIntervalMs);
    this.#enquireTimer.unref();
  }

  #onClose(connection: Connection): void {
    const wasBound = connection.bound;
    connection.bound = false;
    for (const pending of connection.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new NoResponseError('the SMPP connection closed before the answer came'));
    }
    connection.pending.clear();
    if (connection !== this.#connection) return;
    this.#connection = undefined;
    clearInterval(this.#enquireTimer);
    if (this.#stopped || this.#fatal) return;
    if (wasBound) this.#logger.warn('SMPP session closed; reconnecting');
    // The first attempt failed for a reason a retry may cure: let start() return.
    this.#firstAttempt?.resolve();
    this.#firstAttempt = undefined;
    const { reconnectInitialMs, reconnectMaxMs } = this.#options;
    const ceiling = Math.min(reconnectMaxMs, reconnectInitialMs * 2 ** Math.min(this.#failedAttempts, 30));
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#failedAttempts += 1;
    this.#logger.debug({ delayMs: delay, attempt: this.#failedAttempts }, 'reconnecting to the SMSC');
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
    this.#reconnectTimer.unref();
  }

  #fail(error: FatalConnectorError): void {
    this.#fatal = error;
    this.#logger.error({ code: error.code }, error.message);
    this.#firstAttempt?.reject(error);
    this.#firstAttempt = undefined;
    for (const waiter of [...this.#boundWaiters]) waiter.reject(error);
  }

  #send(connection: Connection, command: string, fields: Record<string, unknown>, timeoutMs: number): Promise<Pdu> {
    return new Promise((resolve, reject) => {
      const pdu = new smpp.PDU(command, fields);
      const written = connection.session.send(pdu, (response) => {
        const pending = connection.pending.get(pdu.sequence_number);
        if (!pending) return; // answered after its time-out: already reported as unknown
        clearTimeout(pending.timer);
        connection.pending.delete(pdu.sequence_number);
        resolve(response);
      });
      if (!written) {
        reject(new NotSentError(`could not write ${command}: the SMPP connection is not writable`));
        return;
      }
      const timer = setTimeout(() => {
        connection.pending.delete(pdu.sequence_number);
        reject(new NoResponseError(`no ${command}_resp within ${timeoutMs} ms`));
      }, timeoutMs);
      connection.pending.set(pdu.sequence_number, { reject, timer });
    });
  }

  async #answerDeliverSm(connection: Connection, pdu: Pdu): Promise<void> {
    let status: number;
    try {
      status = await this.#options.onDeliverSm(pdu);
    } catch (error) {
      this.#logger.error({ error: (error as Error).message }, 'could not handle a deliver_sm; asking the SMSC to retry it');
      status = CommandStatus.ESME_RX_T_APPN;
    }
    connection.session.send(pdu.response({ command_status: status }));
  }
}

/** Node's TLS errors for a certificate that does not verify or does not name the host. */
function isCertificateProblem(error: Error & { code?: string }): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/.test(error.code ?? '') || /certificate/i.test(error.message);
}

function closeSession(session: Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.socket.destroyed) return resolve();
    const timer = setTimeout(() => session.destroy(), 1_000);
    session.socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    session.close();
  });
}
