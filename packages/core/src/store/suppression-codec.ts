/**
 * What both adapters share about suppression entries: the fields kept beside the key, and the
 * list's cursor (opaque to callers: base64url of the adapter's own position).
 */
import type { Suppression } from './port.ts';

/** The entry without its key (channel, address, category), as stored. */
export type SuppressionBody = Omit<Suppression, 'channel' | 'address' | 'category'>;

export function suppressionBody(entry: Suppression): SuppressionBody {
  const { channel: _channel, address: _address, category: _category, ...body } = entry;
  return body;
}

export function suppressionOf(channel: string, address: string, category: string, body: SuppressionBody): Suppression {
  return { channel, address, category, ...body };
}

export const encodeCursor = (position: string): string => Buffer.from(position, 'utf8').toString('base64url');

/** The position a cursor holds, or undefined when it is not one of ours. */
export function decodeCursor(cursor: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(cursor)) return undefined;
  return Buffer.from(cursor, 'base64url').toString('utf8');
}
