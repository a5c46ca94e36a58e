/**
 * Provider webhooks: `/hooks/{connector}` and `/hooks/{connector}/…`, any method. Outside
 * control-plane auth: the connector verifies every call with its provider's signature scheme,
 * over the body exactly as received, so this scope keeps raw bytes instead of parsing JSON.
 * Delivery updates the connector returns are applied before the provider gets its answer,
 * so that a provider which sees a 2xx never has to send the receipt again.
 */
import type { ConnectorContext, WebhookRequest, WebhookResponse } from '@omnibus/sdk';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { coreError } from '../errors.ts';
import type { Herder } from '../runtime/types.ts';

export interface HooksRoutesDeps {
  herder: Pick<Herder, 'webhookTarget' | 'applyDeliveryUpdates'>;
  logger: Logger;
}

export function hooksRoutes(deps: HooksRoutesDeps): FastifyPluginAsync {
  const { herder } = deps;
  const logger = deps.logger.child({ component: 'hooks' });

  return async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    const handle = async (request: FastifyRequest<{ Params: { connector: string; '*'?: string } }>, reply: FastifyReply) => {
      const name = request.params.connector;
      const target = await herder.webhookTarget(name);
      if (!target?.connector.webhook) {
        throw coreError('OMNI_ERR_WEBHOOK_NOT_FOUND', { connector: name });
      }
      const connectorLogger = logger.child({ connector: name });
      const context: ConnectorContext = {
        name,
        logger: connectorLogger,
        requestTaskReconfiguration: () => connectorLogger.warn('a webhook asked for task reconfiguration; restart the connector to apply it'),
        raiseError: (error) => connectorLogger.error({ err: error }, 'webhook raised a connector error'),
      };
      const response = await target.connector.webhook(toWebhookRequest(request), target.config as never, context);
      if (response.updates && response.updates.length > 0) await herder.applyDeliveryUpdates(name, response.updates, target.topics);
      return send(reply, response);
    };

    app.all('/hooks/:connector', handle);
    app.all('/hooks/:connector/*', handle);
  };
}

function toWebhookRequest(request: FastifyRequest<{ Params: { connector: string; '*'?: string } }>): WebhookRequest {
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
