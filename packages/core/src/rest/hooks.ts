/**
 * Provider webhooks: `/hooks/{connector}` and `/hooks/{connector}/…`, any method. Outside
 * control-plane auth: the connector verifies every call with its provider's signature scheme,
 * over the body exactly as received, so this scope keeps raw bytes instead of parsing JSON.
 * Delivery updates the connector returns are applied before the provider gets its answer,
 * so that a provider which sees a 2xx never has to send the receipt again.
 *
 * This is the part of the API meant to face the internet, so it asks little of the worker
 * before a caller has proven anything: the connector is looked up before the body is read
 * (a call for no webhook reads no body), bodies are small (`rest.hooks.body.limit.bytes`),
 * a call has `rest.hooks.timeout.ms` to be sent and handled, JSON nested too deeply is
 * refused before the connector parses it, and the route's own answers are constant.
 */
import type { ConnectorContext, WebhookRequest, WebhookResponse } from '@omnibus/sdk';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { CoreError, coreError } from '../errors.ts';
import type { Herder } from '../runtime/types.ts';
import { jsonNestedDeeperThan } from './request-guards.ts';

export interface HooksRoutesDeps {
  herder: Pick<Herder, 'webhookTarget' | 'applyDeliveryUpdates' | 'acceptInbound'>;
  logger: Logger;
  /** Largest accepted webhook body, bytes (413 beyond it). */
  bodyLimit?: number;
  /** Longest a webhook call may take, reading its body included, ms. */
  timeoutMs?: number;
  /** Deepest nesting accepted in a JSON webhook body (400 beyond it). */
  jsonMaxDepth?: number;
}

export const HOOKS_DEFAULTS = { bodyLimit: 256 * 1024, timeoutMs: 10_000, jsonMaxDepth: 64 } as const;

/**
 * Callers of /hooks are anyone on the internet: every answer of the route itself is one of
 * these, naming no connector setting, file or secret (what went wrong is logged).
 */
const ANSWERS = {
  notFound: () => coreError('OMNI_ERR_WEBHOOK_NOT_FOUND', {}),
  unavailable: () => coreError('OMNI_ERR_WEBHOOK_UNAVAILABLE', {}),
  timedOut: () => coreError('OMNI_ERR_WEBHOOK_TIMEOUT', {}),
  failed: () => coreError('OMNI_ERR_WEBHOOK_FAILED', {}),
  tooDeep: (max: number) => coreError('OMNI_ERR_JSON_TOO_DEEP', { max }),
};

type Target = NonNullable<Awaited<ReturnType<Herder['webhookTarget']>>>;
type HookRequest = FastifyRequest<{ Params: { connector: string; '*'?: string } }>;

interface Call {
  target?: Target;
  timer: NodeJS.Timeout;
  /** Rejects when the call has taken too long. */
  expired: Promise<never>;
  handling: boolean;
}

export function hooksRoutes(deps: HooksRoutesDeps): FastifyPluginAsync {
  const { herder } = deps;
  const logger = deps.logger.child({ component: 'hooks' });
  const bodyLimit = deps.bodyLimit ?? HOOKS_DEFAULTS.bodyLimit;
  const timeoutMs = deps.timeoutMs ?? HOOKS_DEFAULTS.timeoutMs;
  const jsonMaxDepth = deps.jsonMaxDepth ?? HOOKS_DEFAULTS.jsonMaxDepth;
  const calls = new WeakMap<FastifyRequest, Call>();

  const lookUp = async (name: string): Promise<Target> => {
    let target: Target | undefined;
    try {
      target = await herder.webhookTarget(name);
    } catch (error) {
      // Unresolvable placeholders (a missing secret file or key) are the operator's to fix: the log names them.
      if (error instanceof CoreError && error.status === 503) logger.warn({ connector: name, err: error }, 'webhook unavailable: its config cannot be resolved');
      else logger.error({ connector: name, error: errorSummary(error) }, 'webhook unavailable: its connector cannot be prepared');
      throw ANSWERS.unavailable();
    }
    if (!target?.connector.webhook) throw ANSWERS.notFound();
    return target;
  };

  return async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    app.addHook('onRequest', async (request) => {
      let expire: (error: Error) => void = () => undefined;
      const expired = new Promise<never>((_resolve, reject) => (expire = reject));
      expired.catch(() => undefined);
      const timer = setTimeout(() => {
        const call = calls.get(request);
        // Still sending its body (or waiting for the lookup): a slow client is cut off; a slow handler answers 503.
        if (call?.handling) expire(ANSWERS.timedOut());
        else request.raw.destroy();
      }, timeoutMs);
      calls.set(request, { timer, expired, handling: false });
    });
    const settle = async (request: FastifyRequest) => {
      const call = calls.get(request);
      if (call) clearTimeout(call.timer);
    };
    app.addHook('onResponse', settle);
    app.addHook('onRequestAbort', settle);
    app.addHook('onError', settle);

    // Before the body is read: a call for no webhook costs no body.
    app.addHook('preParsing', async (request, _reply, payload) => {
      const call = calls.get(request) as Call;
      call.target = await lookUp((request as HookRequest).params.connector);
      return payload;
    });

    const handle = async (request: HookRequest, reply: FastifyReply) => {
      const call = calls.get(request) as Call;
      const target = call.target ?? (await lookUp(request.params.connector));
      const webhook = target.connector.webhook;
      if (!webhook) throw ANSWERS.notFound();
      const webhookRequest = toWebhookRequest(request);
      if (/json/i.test(request.headers['content-type'] ?? '') && jsonNestedDeeperThan(webhookRequest.rawBody, jsonMaxDepth)) throw ANSWERS.tooDeep(jsonMaxDepth);

      const name = request.params.connector;
      const connectorLogger = logger.child({ connector: name });
      const context: ConnectorContext = {
        name,
        logger: connectorLogger,
        requestTaskReconfiguration: () => connectorLogger.warn('a webhook asked for task reconfiguration; restart the connector to apply it'),
        raiseError: (error) => connectorLogger.error({ err: error }, 'webhook raised a connector error'),
      };
      call.handling = true;
      const work = (async () => {
        let response: WebhookResponse;
        try {
          response = await webhook.call(target.connector, webhookRequest, target.config as never, context);
        } catch (error) {
          connectorLogger.error({ err: error }, 'webhook failed');
          throw ANSWERS.failed();
        }
        if (response.updates && response.updates.length > 0) {
          try {
            const eventsTopic = (target.config as { 'delivery.events.topic'?: string })['delivery.events.topic'] || undefined;
            await herder.applyDeliveryUpdates(name, response.updates, target.topics, eventsTopic);
          } catch (error) {
            connectorLogger.error({ err: error }, 'applying webhook receipts failed');
            throw ANSWERS.unavailable();
          }
        }
        if (response.inbound && response.inbound.length > 0) {
          try {
            await herder.acceptInbound(name, target.config as Record<string, unknown>, response.inbound);
          } catch (error) {
            // Answered 503: the provider sends the messages again.
            connectorLogger.error({ err: error }, 'handling inbound messages failed');
            throw ANSWERS.unavailable();
          }
        }
        return response;
      })();
      work.catch(() => undefined);
      try {
        return send(reply, await Promise.race([work, call.expired]));
      } catch (error) {
        if (error instanceof CoreError && error.code === 'OMNI_ERR_WEBHOOK_TIMEOUT') connectorLogger.warn({ timeoutMs }, 'webhook call timed out');
        throw error;
      }
    };

    app.all('/hooks/:connector', { bodyLimit }, handle);
    app.all('/hooks/:connector/*', { bodyLimit }, handle);
  };
}

/** What kind of error it was, without its message (which may quote a config value). */
function errorSummary(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  return { name: error.name, ...('code' in error ? { code: (error as { code: unknown }).code } : {}) };
}

function toWebhookRequest(request: HookRequest): WebhookRequest {
  const [pathname = '', search = ''] = request.url.split(/\?(.*)/s);
  const rest = request.params['*'];
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(search)) if (!(name in query)) query[name] = value;
  return {
    method: request.method,
    path: rest ? `/${rest}` : '/',
    url: `${request.protocol}://${request.host}${pathname}${search ? `?${search}` : ''}`,
    query,
    headers,
    rawBody: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
  };
}

function send(reply: FastifyReply, response: WebhookResponse): FastifyReply {
  reply.status(response.status);
  for (const [name, value] of Object.entries(response.headers ?? {})) reply.header(name, value);
  const { body } = response;
  if (body === undefined || body === null) return reply.send();
  if (typeof body === 'string' || Buffer.isBuffer(body)) return reply.send(body);
  return reply.type('application/json; charset=utf-8').send(JSON.stringify(body));
}
