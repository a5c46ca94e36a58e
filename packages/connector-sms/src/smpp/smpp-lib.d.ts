/**
 * Types for the parts of npm `smpp` (farhadi/node-smpp 0.5.x) this package uses; the
 * package ships none. PDU fields keep the SMPP specification's names.
 */
declare module 'smpp' {
  import type { EventEmitter } from 'node:events';
  import type { Server as NetServer, Socket } from 'node:net';

  export interface Pdu {
    command: string;
    command_id: number;
    command_status: number;
    sequence_number: number;
    isResponse(): boolean;
    response(options?: Record<string, unknown>): Pdu;
    [field: string]: unknown;
  }

  export interface Session extends EventEmitter {
    readonly socket: Socket;
    /** False when the socket is not writable (nothing was sent). */
    send(pdu: Pdu, responseCallback?: (pdu: Pdu) => void, sendCallback?: (pdu: Pdu) => void): boolean;
    close(callback?: () => void): void;
    destroy(callback?: () => void): void;
    pause(): void;
    resume(): void;
  }

  export interface Server extends NetServer {
    readonly sessions: Session[];
  }

  export const PDU: new (command: string, options?: Record<string, unknown>) => Pdu;

  export interface TextEncoding {
    match(value: string): boolean;
    encode(value: string): Buffer;
    decode(value: Buffer): string;
  }

  /** With `tls: true` the options go to `tls.connect` as they are (ca, rejectUnauthorized, servername…). */
  export function connect(
    options: { host: string; port: number; tls?: boolean; ca?: string; rejectUnauthorized?: boolean; servername?: string },
    listener?: () => void,
  ): Session;
  export function createServer(options: Record<string, unknown>, listener: (session: Session) => void): Server;
  export const encodings: { ASCII: TextEncoding; LATIN1: TextEncoding; UCS2: TextEncoding };

  const smpp: {
    PDU: typeof PDU;
    connect: typeof connect;
    createServer: typeof createServer;
    encodings: typeof encodings;
  };
  export default smpp;
}
