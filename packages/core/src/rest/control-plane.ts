/**
 * Kafka Connect's REST control plane (ConnectorsResource, ConnectorPluginsResource): the same
 * paths, status codes, bodies and quirks, as a thin layer over the Herder. Every request is
 * checked here, shape and types, before the herder is called, so a malformed request gets a
 * 4xx `{error_code, message}` and changes nothing.
 *
 * One deliberate difference from Kafka: GET responses never show a secret. Values of
 * PASSWORD-typed keys come back as `[hidden]` (placeholders such as `${env:SMTP_PASSWORD}`
 * are not secrets and come back as written), and a PUT or PATCH that sends `[hidden]` back
 * for a secret keeps the stored value, so a GET-edit-PUT round trip does not erase it — unless
 * the class or an endpoint-like key (`*.url`, `*.host`, `*.port`…) changes in the same request:
 * a stored secret is never sent to an endpoint it was not stored for, so `[hidden]` is then
 * refused (400, naming the keys to send again), and a PATCH that does not send a secret again
 * drops it. The herder does both, against the same read of the connector it writes over.
 */
import type { ConfigSpec, ProviderStatus } from '@omnibus/sdk';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { CoreError, coreError } from '../errors.ts';
import { isOnlyPlaceholders } from '../runtime/config-providers.ts';
import { checkConnectorName, checkOffsets, withConfigName } from '../runtime/connector-checks.ts';
import { commonConnectorSpec, fullSpec, maskSecrets } from '../runtime/connector-config.ts';
import type { ConnectorInfo, Herder, PluginRegistry, TargetState } from '../runtime/types.ts';
import type { SourceOffset } from '../store/port.ts';
import { BUILTIN_CATALOG } from '../transforms/catalog.ts';
import { chainSpec } from '../transforms/chain.ts';
import { transformPluginConfig, transformPluginInfos } from '../transforms/plugin-infos.ts';

export interface ControlPlaneDeps {
  herder: Herder;
  plugins: PluginRegistry;
  logger: Logger;
  /** Kafka's topic.tracking.enable and topic.tracking.allow.reset (both true by default, as in Kafka). */
  topicTracking?: { enabled: boolean; allowReset: boolean };
  /** The provider statuses (circuit breakers) of a connector's tasks running on this worker. */
  providers?: (connector: string) => Array<{ task: number; providers: ProviderStatus[] }>;
}

const INT32_MAX = 2_147_483_647;

const INITIAL_STATES: Record<string, TargetState> = { RUNNING: 'STARTED', PAUSED: 'PAUSED', STOPPED: 'STOPPED' };
const CREATE_FIELDS = new Set(['name', 'config', 'initial_state']);

type Params = { connector: string };
type TaskParams = { connector: string; task: string };
type Query = Record<string, string | string[] | undefined>;

export function controlPlaneRoutes(deps: ControlPlaneDeps): FastifyPluginAsync {
  const { herder, plugins } = deps;
  const topicTracking = deps.topicTracking ?? { enabled: true, allowReset: true };
  const logger = deps.logger.child({ component: 'control-plane' });

  const specOf = (config: Record<string, string | null> | undefined): ConfigSpec<unknown> | undefined => {
    const connector = plugins.find(config?.['connector.class'] ?? '');
    if (!connector) return undefined;
    // A secret a transformation or predicate declares is masked like the connector's own.
    return fullSpec(connector.config as ConfigSpec<unknown>).merge(chainSpec(config ?? {}, plugins.transformCatalog?.() ?? BUILTIN_CATALOG));
  };

  /**
   * The config as a response may show it: secrets hidden (by the spec of its class and of any
   * class it had before this request, or by name), placeholders as written.
   */
  const masked = (config: Record<string, string>, ...specs: Array<ConfigSpec<unknown> | undefined>): Record<string, string> => {
    const out = maskSecrets(config, specOf(config), ...specs);
    for (const [key, value] of Object.entries(config)) if (isOnlyPlaceholders(value)) out[key] = value;
    return out;
  };

  const maskedInfo = (info: ConnectorInfo, before?: Record<string, string>): ConnectorInfo => ({ ...info, config: masked(info.config, specOf(before)) });

  const existingConfig = async (name: string): Promise<Record<string, string> | undefined> => {
    try {
      return (await herder.connectorInfo(name)).config;
    } catch (error) {
      if (error instanceof CoreError && error.status === 404) return undefined;
      throw error;
    }
  };

  return async (app) => {
    // Kafka accepts `Content-Type: application/json` with an empty body on the body-less verbs
    // (pause, resume, restart…); curl users send it out of habit.
    // JSON only, as Kafka's resources (@Consumes(APPLICATION_JSON)): anything else is a 415.
    app.removeContentTypeParser('text/plain');
    const defaultJson = app.getDefaultJsonParser('error', 'error');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      if (body === '' || (typeof body === 'string' && body.trim() === '')) done(null, undefined);
      else defaultJson(request, body as string, done);
    });

    app.get<{ Querystring: Query }>('/connectors', async (request) => {
      const expand = new Set<string>();
      for (const value of listParam(request.query.expand)) {
        if (value === 'status' || value === 'info') expand.add(value);
        // Kafka's documented behaviour: unknown expand values are ignored (and logged).
        else request.log.warn({ expand: value }, 'ignoring unknown expand value');
      }
      const names = [...(await herder.connectorNames())].sort();
      // Kafka answers the map whenever `expand` is given, even if none of its values is known.
      if (request.query.expand === undefined) return names;
      const out: Record<string, { status?: unknown; info?: unknown }> = {};
      await Promise.all(
        names.map(async (name) => {
          try {
            const entry: { status?: unknown; info?: unknown } = {};
            if (expand.has('status')) entry.status = await herder.connectorStatus(name);
            if (expand.has('info')) entry.info = maskedInfo(await herder.connectorInfo(name));
            out[name] = entry;
          } catch (error) {
            // Deleted while we listed: skipped, as Kafka does.
            if (!(error instanceof CoreError && error.status === 404)) throw error;
          }
        }),
      );
      return Object.fromEntries(names.filter((n) => n in out).map((n) => [n, out[n]]));
    });

    app.post<{ Body: unknown }>('/connectors', async (request, reply) => {
      const body = objectBody(request.body);
      for (const field of Object.keys(body)) {
        if (!CREATE_FIELDS.has(field)) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `Unrecognized field "${field}" in the request body; expected name, config and initial_state` });
      }
      if (body.name !== undefined && body.name !== null && typeof body.name !== 'string') throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'Connector name must be a string' });
      const name = typeof body.name === 'string' ? body.name.trim() : '';
      checkConnectorName(name);
      if (body.config === undefined || body.config === null) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'The request body has no connector config' });
      const config = configBody(body.config, { allowNull: false, what: 'config' });
      withConfigName(name, config);
      let initialState: TargetState | undefined;
      if (body.initial_state !== undefined && body.initial_state !== null) {
        const given = typeof body.initial_state === 'string' ? INITIAL_STATES[body.initial_state.toUpperCase()] : undefined;
        if (!given) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `Invalid initial_state ${JSON.stringify(body.initial_state)}: expected RUNNING, PAUSED or STOPPED` });
        initialState = given;
      }
      const info = await herder.createConnector(name, config as Record<string, string>, initialState);
      return reply.status(201).header('location', locationOf(name)).send(maskedInfo(info));
    });

    app.get<{ Params: Params }>('/connectors/:connector', async (request) => maskedInfo(await herder.connectorInfo(request.params.connector)));

    app.delete<{ Params: Params }>('/connectors/:connector', async (request, reply) => {
      await herder.deleteConnector(request.params.connector);
      return reply.status(204).send();
    });

    app.get<{ Params: Params }>('/connectors/:connector/config', async (request) => {
      const info = await herder.connectorInfo(request.params.connector);
      return masked(info.config);
    });

    app.put<{ Params: Params; Body: unknown }>('/connectors/:connector/config', async (request, reply) => {
      const name = request.params.connector;
      checkConnectorName(name);
      const config = configBody(request.body, { allowNull: false, what: 'connector config' });
      withConfigName(name, config);
      // Read for the reply only (its masking knows the class the connector had): the herder
      // restores `[hidden]` from its own read, the one it checks the write against.
      const existing = await existingConfig(name);
      const { created, info } = await herder.putConnectorConfig(name, config as Record<string, string>);
      if (created) reply.status(201).header('location', locationOf(name));
      return reply.send(maskedInfo(info, existing));
    });

    app.patch<{ Params: Params; Body: unknown }>('/connectors/:connector/config', async (request) => {
      const name = request.params.connector;
      const patch = configBody(request.body, { allowNull: true, what: 'config patch' });
      if ('name' in patch) withConfigName(name, { name: patch.name });
      const existing = await existingConfig(name);
      return maskedInfo(await herder.patchConnectorConfig(name, patch), existing);
    });

    app.get<{ Params: Params }>('/connectors/:connector/status', async (request) => herder.connectorStatus(request.params.connector));

    // This worker's view: breakers live in the tasks, so each worker answers for the tasks it runs.
    app.get<{ Params: Params }>('/connectors/:connector/providers', async (request) => {
      const name = request.params.connector;
      await herder.connectorInfo(name);
      return { name, tasks: deps.providers?.(name) ?? [] };
    });

    app.get<{ Params: Params }>('/connectors/:connector/tasks', async (request) => {
      const name = request.params.connector;
      const [info, tasks] = await Promise.all([herder.connectorInfo(name), herder.taskConfigs(name)]);
      const spec = specOf(info.config);
      return tasks.map((task) => ({ id: task.id, config: masked(task.config, spec) }));
    });

    app.get<{ Params: Params }>('/connectors/:connector/tasks-config', async (request) => {
      const name = request.params.connector;
      request.log.warn('GET /connectors/{connector}/tasks-config is deprecated; use GET /connectors/{connector}/tasks');
      const [info, tasks] = await Promise.all([herder.connectorInfo(name), herder.taskConfigs(name)]);
      const spec = specOf(info.config);
      return Object.fromEntries(tasks.map((task) => [`${task.id.connector}-${task.id.task}`, masked(task.config, spec)]));
    });

    app.get<{ Params: TaskParams }>('/connectors/:connector/tasks/:task/status', async (request) => {
      const { connector } = request.params;
      const task = taskId(request.params.task);
      const status = await herder.connectorStatus(connector);
      const state = status.tasks.find((t) => t.id === task);
      if (!state) throw coreError('OMNI_ERR_TASK_STATUS_NOT_FOUND', { connector, task });
      return state;
    });

    app.post<{ Params: TaskParams }>('/connectors/:connector/tasks/:task/restart', async (request, reply) => {
      const task = taskId(request.params.task);
      await herder.restartTask(request.params.connector, task);
      return reply.status(204).send();
    });

    app.post<{ Params: Params; Querystring: Query }>('/connectors/:connector/restart', async (request, reply) => {
      const includeTasks = booleanParam(request.query, 'includeTasks', false);
      const onlyFailed = booleanParam(request.query, 'onlyFailed', false);
      const name = request.params.connector;
      const status = await herder.restartConnector(name, { includeTasks, onlyFailed });
      // Kafka's legacy form (no flags) answers 204 with no body; with flags, 202 and the status.
      if (!includeTasks && !onlyFailed) return reply.status(204).send();
      return reply.status(202).send(status ?? (await herder.connectorStatus(name)));
    });

    const targetState = (state: TargetState, status: number) => async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
      await herder.setTargetState(request.params.connector, state);
      return reply.status(status).send();
    };
    app.put('/connectors/:connector/pause', targetState('PAUSED', 202));
    app.put('/connectors/:connector/resume', targetState('STARTED', 202));
    app.put('/connectors/:connector/stop', targetState('STOPPED', 204));

    // Kafka checks the settings before the connector: a disabled route answers 403 for any name.
    app.get<{ Params: Params }>('/connectors/:connector/topics', async (request) => {
      if (!topicTracking.enabled) throw coreError('OMNI_ERR_TOPIC_TRACKING_DISABLED', {});
      const name = request.params.connector;
      return { [name]: { topics: await herder.activeTopics(name) } };
    });

    app.put<{ Params: Params }>('/connectors/:connector/topics/reset', async (request, reply) => {
      if (!topicTracking.enabled) throw coreError('OMNI_ERR_TOPIC_TRACKING_DISABLED', {});
      if (!topicTracking.allowReset) throw coreError('OMNI_ERR_TOPIC_TRACKING_RESET_DISABLED', {});
      await herder.resetActiveTopics(request.params.connector);
      return reply.status(202).send();
    });

    app.get<{ Params: Params }>('/connectors/:connector/offsets', async (request) => ({
      offsets: await herder.offsets(request.params.connector),
    }));

    app.patch<{ Params: Params; Body: unknown }>('/connectors/:connector/offsets', async (request) => {
      const offsets = offsetsBody(request.body);
      await herder.alterOffsets(request.params.connector, offsets);
      return { message: 'The offsets for this connector have been altered successfully' };
    });

    app.delete<{ Params: Params }>('/connectors/:connector/offsets', async (request) => {
      await herder.resetOffsets(request.params.connector);
      return { message: 'The offsets for this connector have been reset successfully' };
    });

    app.get<{ Querystring: Query }>('/connector-plugins', async (request) => {
      const connectorsOnly = booleanParam(request.query, 'connectorsOnly', true);
      const connectors = plugins.list().map((p) => (p.version ? p : { class: p.class, type: p.type }));
      // As Kafka: transformations and predicates only with connectorsOnly=false, after the connectors.
      return connectorsOnly ? connectors : [...connectors, ...transformPluginInfos(plugins.transformCatalog?.() ?? BUILTIN_CATALOG)];
    });

    app.get<{ Params: { plugin: string } }>('/connector-plugins/:plugin/config', async (request) => {
      const connector = plugins.find(request.params.plugin);
      const transform = connector ? undefined : transformPluginConfig(plugins.transformCatalog?.() ?? BUILTIN_CATALOG, request.params.plugin);
      if (transform) return transform;
      if (!connector) throw coreError('OMNI_ERR_PLUGIN_NOT_FOUND', { plugin: request.params.plugin });
      // The plugin's own keys first, then the framework's it does not override, as Kafka lists them.
      const spec = (connector.config as ConfigSpec<unknown>).merge(commonConnectorSpec);
      return spec.validate(connector.className, {}).configs.map((c) => c.definition);
    });

    app.put<{ Params: { plugin: string }; Body: unknown }>('/connector-plugins/:plugin/config/validate', async (request) => {
      const plugin = request.params.plugin;
      const config = configBody(request.body, { allowNull: true, what: 'connector config' });
      const included = config['connector.class'];
      if (typeof included !== 'string' || included.trim() === '') {
        throw coreError('OMNI_ERR_CONNECTOR_CLASS_MISSING', { problem: 'Connector config contains no connector type' });
      }
      if (!normalisedPluginName(included).endsWith(normalisedPluginName(plugin))) {
        throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `Included connector type ${included} does not match request type ${plugin}` });
      }
      return herder.validateConfig(included, config);
    });

    logger.debug('control plane routes registered');
  };
}

function locationOf(name: string): string {
  return `/connectors/${encodeURIComponent(name)}`;
}

function objectBody(body: unknown, what = 'The request body'): Record<string, unknown> {
  if (body === undefined) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `${what} is missing: expected a JSON object` });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `${what} must be a JSON object, not ${describeJson(body)}` });
  }
  return body as Record<string, unknown>;
}

/**
 * A `{string: string}` map, as Kafka's Map<String,String>: numbers and booleans become their
 * text (Jackson coerces them too); objects and arrays are refused. `null` only where it means
 * something (PATCH removes the key; validate reports it).
 */
function configBody(body: unknown, options: { allowNull: boolean; what: string }): Record<string, string | null> {
  const object = objectBody(body, `The ${options.what}`);
  const out: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(object)) {
    if (key === '') throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `The ${options.what} has an empty key` });
    if (typeof value === 'string') out[key] = value;
    else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') out[key] = String(value);
    else if (value === null && options.allowNull) out[key] = null;
    else if (value === null) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `Invalid value for ${key}: Null value can not be supplied as the configuration value.` });
    else throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `Invalid value for ${key}: expected a string, not ${describeJson(value)}` });
  }
  return out;
}

function taskId(text: string): number {
  const id = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(id <= INT32_MAX)) throw coreError('OMNI_ERR_TASK_ID_INVALID', { id: JSON.stringify(text) });
  return id;
}

function listParam(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * As Kafka's JAX-RS Boolean parameters: absent or blank is the default; then only `true`
 * (any case) is true and every other value false, never an error. A repeated one counts once, first.
 */
function booleanParam(query: Query, name: string, fallback: boolean): boolean {
  const given = query[name];
  const value = Array.isArray(given) ? given[0] : given;
  if (value === undefined || value.trim() === '') return fallback;
  return value.toLowerCase() === 'true';
}

function offsetsBody(body: unknown): SourceOffset[] {
  return checkOffsets(objectBody(body).offsets);
}

/** Kafka compares plugin names without a trailing "Connector". */
function normalisedPluginName(name: string): string {
  return name.endsWith('Connector') ? name.slice(0, -'Connector'.length) : name;
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
