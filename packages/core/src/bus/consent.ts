/**
 * The suppression rules, one place for the sinks' gate, the receipts, the inbound messages and
 * the REST API:
 * - an entry of category `all` (a STOP, an opt-out, a hard bounce, or an operator's) stops every
 *   message to its address on its channel, critical or not;
 * - an entry of another category stops the messages of that category, unless they are
 *   `critical` (a preference, such as no marketing, does not hold back a security alert);
 * - a message without a category is stopped only by `all`.
 */
import {
  ALL_CATEGORIES,
  CATEGORY_HEADER,
  CATEGORY_PATTERN,
  CRITICAL_HEADER,
  normalizeAddress,
  type ConsentChannel,
  type SuppressionRequest,
} from '@omnibus/sdk';
import type { Logger } from '@omnibus/sdk';
import type { Store, Suppression } from '../store/port.ts';

/** The category and critical flag a message carries in its headers. */
export function messageConsent(headers: Readonly<Record<string, string>>): { category: string | undefined; critical: boolean } {
  const category = headers[CATEGORY_HEADER];
  return { category: category === undefined || category === '' ? undefined : category, critical: headers[CRITICAL_HEADER] === 'true' };
}

/** The entry that holds the message back, if any: `all` first, then its category's unless it is critical. */
export function blockingEntry(entries: readonly Suppression[], category: string | undefined, critical: boolean): Suppression | undefined {
  return (
    entries.find((entry) => entry.category === ALL_CATEGORIES) ??
    (critical || category === undefined ? undefined : entries.find((entry) => entry.category === category))
  );
}

/** The list entries for providers' requests (normalised addresses; unreadable ones are logged and left out). */
export function entriesFromRequests(requests: readonly SuppressionRequest[], connector: string, logger: Logger, now = Date.now()): Suppression[] {
  const entries = new Map<string, Suppression>();
  for (const request of requests) {
    const address = normalizeAddress(request.channel, request.address);
    if (!address) {
      logger.warn({ channel: request.channel, reason: request.reason }, 'a provider asked to suppress an address that cannot be read; ignored');
      continue;
    }
    const category = request.category !== undefined && CATEGORY_PATTERN.test(request.category) ? request.category : ALL_CATEGORIES;
    entries.set(`${request.channel}|${address}|${category}`, {
      channel: request.channel,
      address,
      category,
      reason: request.reason,
      ...(request.code !== undefined ? { code: request.code } : {}),
      connector,
      createdAt: now,
    });
  }
  return [...entries.values()];
}

const SUPPRESSION_WRITE_DELAYS_MS = [100, 500, 2000];

/**
 * Stores what providers said about addresses. A failed write is tried again a few times; one
 * that still fails is logged (the provider will refuse the next send to the address again, and
 * report it again), never thrown: the message's own outcome must still be recorded.
 */
export async function recordSuppressions(store: Store, requests: readonly SuppressionRequest[], connector: string, logger: Logger): Promise<void> {
  if (requests.length === 0) return;
  const entries = entriesFromRequests(requests, connector, logger);
  if (entries.length === 0) return;
  for (let attempt = 0; ; attempt++) {
    try {
      await store.putSuppressions(entries);
      logger.info({ suppressed: entries.length, reasons: [...new Set(entries.map((e) => e.reason))] }, 'addresses suppressed at the provider\'s word');
      return;
    } catch (error) {
      const delay = SUPPRESSION_WRITE_DELAYS_MS[attempt];
      if (delay === undefined) {
        logger.error({ err: error, suppressions: entries.length }, 'could not store suppressions a provider asked for');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

export type { ConsentChannel };

/**
 * A produce item's `category` and `critical` as the headers that carry them (added to
 * `headers`), or the problems by field. A category given as the `omnibus.category` header
 * is checked the same way.
 */
export function consentHeaders(
  category: unknown,
  critical: unknown,
  headers: Record<string, string>,
): { headers: Record<string, string>; problems: Array<{ field: string; message: string }> } {
  const problems: Array<{ field: string; message: string }> = [];
  let out = headers;
  const categoryProblem = 'must be 1 to 64 characters from [a-z0-9._-], starting with a letter or digit, and not "all"';
  if (category !== undefined && category !== null) {
    if (typeof category !== 'string' || !CATEGORY_PATTERN.test(category) || category === ALL_CATEGORIES) problems.push({ field: 'category', message: categoryProblem });
    else out = { ...out, [CATEGORY_HEADER]: category };
  } else if (headers[CATEGORY_HEADER] !== undefined && (!CATEGORY_PATTERN.test(headers[CATEGORY_HEADER]) || headers[CATEGORY_HEADER] === ALL_CATEGORIES)) {
    problems.push({ field: `headers.${CATEGORY_HEADER}`, message: categoryProblem });
  }
  if (critical !== undefined && critical !== null) {
    if (typeof critical !== 'boolean') problems.push({ field: 'critical', message: 'must be true or false' });
    else if (critical) out = { ...out, [CRITICAL_HEADER]: 'true' };
  }
  return { headers: out, problems };
}
