/**
 * The suppression list through REST: `POST /suppressions` adds (or replaces) an entry,
 * `GET /suppressions` lists them page by page, `GET /suppressions/{channel}/{address}` looks up
 * an address's entries, `DELETE /suppressions/{channel}/{address}` removes them (or one
 * category's, with `?category=`). Addresses are normalised (E.164 for phones, lower-case
 * e-mail); one that cannot be read is refused naming the field, and nothing is stored.
 */
import { ALL_CATEGORIES, CATEGORY_PATTERN, CONSENT_CHANNELS, isConsentChannel, normalizeAddress, type ConsentChannel } from '@omnibus/sdk';
import type { FastifyPluginAsync } from 'fastify';
import { coreError } from '../errors.ts';
import type { Store, Suppression } from '../store/port.ts';

export interface SuppressionRoutesDeps {
  store: Store;
}

const REASONS = ['manual', 'stop', 'opted-out', 'hard-bounce', 'blocked'] as const;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

const invalid = (field: string, problem: string) => coreError('OMNI_ERR_SUPPRESSION_INVALID', { field, problem });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function suppressionView(entry: Suppression) {
  return {
    channel: entry.channel,
    address: entry.address,
    category: entry.category,
    reason: entry.reason,
    ...(entry.code !== undefined ? { code: entry.code } : {}),
    ...(entry.connector !== undefined ? { connector: entry.connector } : {}),
    ...(entry.note !== undefined ? { note: entry.note } : {}),
    created_at: entry.createdAt,
  };
}

function channelOf(raw: unknown, field: string): ConsentChannel {
  if (!isConsentChannel(raw)) throw invalid(field, `must be one of ${CONSENT_CHANNELS.join(', ')}`);
  return raw;
}

function addressOf(channel: ConsentChannel, raw: unknown, field: string): string {
  const address = typeof raw === 'string' ? normalizeAddress(channel, raw) : undefined;
  if (!address) throw invalid(field, channel === 'email' ? 'must be an e-mail address' : 'must be a phone number in international form (E.164, e.g. +33612345678)');
  return address;
}

function categoryOf(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || (raw !== ALL_CATEGORIES && !CATEGORY_PATTERN.test(raw))) {
    throw invalid(field, `must be "${ALL_CATEGORIES}" or a category of 1 to 64 characters from [a-z0-9._-]`);
  }
  return raw;
}

/** The entry a POST body describes, checked whole before anything is written. */
export function suppressionFromBody(body: unknown, now = Date.now()): Suppression {
  if (!isObject(body)) throw invalid('body', 'expected a JSON object {channel, address, category?, reason?, note?}');
  const known = new Set(['channel', 'address', 'category', 'reason', 'note']);
  for (const key of Object.keys(body)) if (!known.has(key)) throw invalid(key, 'is not a field of a suppression');
  const channel = channelOf(body.channel, 'channel');
  const address = addressOf(channel, body.address, 'address');
  const category = body.category === undefined ? ALL_CATEGORIES : categoryOf(body.category, 'category');
  const reason = body.reason ?? 'manual';
  if (typeof reason !== 'string' || !(REASONS as readonly string[]).includes(reason)) throw invalid('reason', `must be one of ${REASONS.join(', ')}`);
  if (body.note !== undefined && (typeof body.note !== 'string' || body.note.length > 500)) throw invalid('note', 'must be a string of at most 500 characters');
  return { channel, address, category, reason, ...(typeof body.note === 'string' ? { note: body.note } : {}), createdAt: now };
}

export function suppressionRoutes({ store }: SuppressionRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    app.post('/suppressions', async (request, reply) => {
      const entry = suppressionFromBody(request.body);
      await store.putSuppressions([entry]);
      return reply.status(201).send(suppressionView(entry));
    });

    app.get<{ Querystring: { limit?: string; cursor?: string } }>('/suppressions', async (request) => {
      const { limit: rawLimit, cursor } = request.query;
      const limit = rawLimit === undefined ? DEFAULT_PAGE : Number(rawLimit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw invalid('limit', `must be an integer from 1 to ${MAX_PAGE}`);
      if (cursor !== undefined && !/^[A-Za-z0-9_-]{1,4096}$/.test(cursor)) throw invalid('cursor', 'is not a cursor this list gave');
      const page = await store.listSuppressions(limit, cursor === '' ? undefined : cursor);
      return { suppressions: page.entries.map(suppressionView), ...(page.cursor ? { next_cursor: page.cursor } : {}) };
    });

    app.get<{ Params: { channel: string; address: string } }>('/suppressions/:channel/:address', async (request) => {
      const channel = channelOf(request.params.channel, 'channel');
      const address = addressOf(channel, request.params.address, 'address');
      const entries = await store.findSuppressions(channel, [address]);
      if (entries.length === 0) throw coreError('OMNI_ERR_SUPPRESSION_NOT_FOUND', { address, channel, category: '' });
      return { channel, address, suppressions: entries.sort((a, b) => a.category.localeCompare(b.category)).map(suppressionView) };
    });

    app.delete<{ Params: { channel: string; address: string }; Querystring: { category?: string } }>('/suppressions/:channel/:address', async (request, reply) => {
      const channel = channelOf(request.params.channel, 'channel');
      const address = addressOf(channel, request.params.address, 'address');
      const category = request.query.category === undefined ? undefined : categoryOf(request.query.category, 'category');
      const removed = await store.deleteSuppressions(channel, address, category);
      if (removed === 0) throw coreError('OMNI_ERR_SUPPRESSION_NOT_FOUND', { address, channel, category: category === undefined ? '' : ` (category ${category})` });
      return reply.status(204).send();
    });
  };
}
