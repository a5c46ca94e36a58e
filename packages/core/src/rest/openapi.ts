/**
 * The worker's OpenAPI 3.1 document, served at `GET /openapi.json`: Kafka Connect's control
 * plane (every path, operation id and schema of Kafka's published spec, with the status codes
 * Kafka really answers, which its generated spec leaves out), the bus's data plane, webhooks,
 * health and metrics. Written as JSON Schemas in code, so the route tests can validate every
 * response they get against it.
 */
import type { FastifyPluginAsync } from 'fastify';
import { MAX_CLOCK_WAIT_MS, MAX_WAKE_SHARDS } from '../bus/peer-wake.ts';
import { VERSION } from '../version.ts';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Schema): Schema => ({ anyOf: [schema, { type: 'null' }] });
const arrayOf = (items: Schema): Schema => ({ type: 'array', items });
const mapOf = (values: Schema): Schema => ({ type: 'object', additionalProperties: values });
const STRING = { type: 'string' } as const;
const INT32 = { type: 'integer', format: 'int32' } as const;
const INT64 = { type: 'integer', format: 'int64' } as const;
const STRING_MAP = mapOf(STRING);
const JSON_OBJECT: Schema = { type: 'object', additionalProperties: true };
const CONNECTOR_TYPE: Schema = { type: 'string', enum: ['source', 'sink', 'unknown'] };
const STATE: Schema = { type: 'string', enum: ['UNASSIGNED', 'RUNNING', 'PAUSED', 'STOPPED', 'FAILED', 'RESTARTING'] };

const object = (properties: Record<string, Schema>, required: string[] = Object.keys(properties), extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
  ...extra,
});

const schemas: Record<string, Schema> = {
  // ---- Kafka Connect's entities (names and fields as in Kafka's published spec) ----
  ServerInfo: object({
    version: { type: 'string', description: 'The Kafka Connect REST API level implemented (e.g. 3.9.0): what clients compare to gate features.' },
    commit: { type: 'string', pattern: '^[0-9a-f]{16}$', description: 'The commit Omnibus was built from (16 hex digits; a digest of the version when unknown).' },
    kafka_cluster_id: {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]{22}$',
      description: 'The cluster\'s opaque id (base64url of 16 bytes, a digest of the store the workers share): the same on every worker.',
    },
    omnibus_version: { type: 'string', description: 'Omnibus\'s own version.' },
  }),
  WorkerStatus: object({ status: { type: 'string', enum: ['healthy', 'starting', 'unhealthy'] }, message: STRING }),
  ConnectorTaskId: object({ connector: STRING, task: INT32 }),
  ConnectorInfo: object({
    name: STRING,
    config: { ...STRING_MAP, description: 'The config as stored: secrets hidden as "[hidden]", ${provider:…} placeholders as written.' },
    tasks: arrayOf(ref('ConnectorTaskId')),
    type: CONNECTOR_TYPE,
  }),
  TaskInfo: object({ id: ref('ConnectorTaskId'), config: STRING_MAP }),
  ConnectorState: object({ state: STATE, worker_id: STRING, trace: { type: 'string', description: 'Present only when the instance failed.' } }, [
    'state',
    'worker_id',
  ]),
  TaskState: object({ id: INT32, state: STATE, worker_id: STRING, trace: STRING }, ['id', 'state', 'worker_id']),
  ConnectorStateInfo: object({ name: STRING, connector: ref('ConnectorState'), tasks: arrayOf(ref('TaskState')), type: CONNECTOR_TYPE }),
  ProviderStatus: object({
    alias: STRING,
    state: { type: 'string', enum: ['closed', 'half-open', 'open'] },
    failureRate: { type: 'number', minimum: 0, maximum: 1 },
    timesOpened: INT64,
    sent: INT64,
    failed: INT64,
  }),
  ConnectorProviders: object({ name: STRING, tasks: arrayOf(object({ task: INT32, providers: arrayOf(ref('ProviderStatus')) })) }),
  CreateConnectorRequest: object(
    {
      name: STRING,
      config: mapOf({ type: ['string', 'number', 'boolean'] }),
      initial_state: {
        type: 'string',
        description: 'RUNNING (default), PAUSED or STOPPED; case-insensitive (KIP-980).',
        examples: ['RUNNING', 'PAUSED', 'STOPPED'],
      },
    },
    ['name', 'config'],
  ),
  ConnectorOffset: object(
    {
      partition: { ...JSON_OBJECT, description: 'Sources: the connector\'s partition map. Sinks: {"topic", "shard"}.' },
      offset: { ...nullable(JSON_OBJECT), description: 'Sources: the connector\'s offset map. Sinks: {"watermark": ms}. null resets it.' },
    },
    ['partition', 'offset'],
  ),
  ConnectorOffsets: object({ offsets: arrayOf(ref('ConnectorOffset')) }),
  PluginInfo: object({ class: STRING, type: { type: 'string', enum: ['sink', 'source', 'transformation', 'predicate'] }, version: STRING }, ['class', 'type']),
  ConfigKeyInfo: object({
    name: STRING,
    type: { type: 'string', enum: ['BOOLEAN', 'STRING', 'INT', 'SHORT', 'LONG', 'DOUBLE', 'LIST', 'CLASS', 'PASSWORD'] },
    required: { type: 'boolean' },
    default_value: nullable(STRING),
    importance: { type: 'string', enum: ['HIGH', 'MEDIUM', 'LOW'] },
    documentation: STRING,
    group: nullable(STRING),
    order: INT32,
    width: { type: 'string', enum: ['NONE', 'SHORT', 'MEDIUM', 'LONG'] },
    display_name: STRING,
    dependents: arrayOf(STRING),
  }),
  ConfigValueInfo: object({
    name: STRING,
    value: { ...nullable(STRING), description: 'PASSWORD values are shown as "[hidden]".' },
    recommended_values: arrayOf(STRING),
    errors: arrayOf(STRING),
    visible: { type: 'boolean' },
  }),
  ConfigInfo: object({ definition: nullable(ref('ConfigKeyInfo')), value: nullable(ref('ConfigValueInfo')) }),
  ConfigInfos: object({ name: STRING, error_count: INT32, groups: arrayOf(STRING), configs: arrayOf(ref('ConfigInfo')) }),
  // ---- entities Kafka's generated spec leaves untyped ----
  ErrorMessage: {
    type: 'object',
    properties: {
      error_code: { type: 'integer', description: 'The HTTP status.' },
      message: STRING,
      errors: { description: 'Per-key or per-item problems, when the request had several.' },
    },
    required: ['error_code', 'message'],
    additionalProperties: true,
  },
  Message: object({ message: STRING }),
  LoggerLevel: object({
    level: { type: 'string', enum: ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL', 'OFF'] },
    last_modified: nullable(INT64),
  }),
  ActiveTopicsInfo: object({ topics: arrayOf(STRING) }),
  ConnectorExpansion: object({ status: ref('ConnectorStateInfo'), info: ref('ConnectorInfo') }, []),
};

// ---- parameters and responses --------------------------------------------------------------

const pathParam = (name: string, schema: Schema = STRING, description?: string): Schema => ({
  in: 'path',
  name,
  required: true,
  schema,
  ...(description ? { description } : {}),
});
const queryParam = (name: string, schema: Schema, description: string): Schema => ({ in: 'query', name, schema, description });
const booleanQuery = (name: string, fallback: boolean, description: string) =>
  queryParam(name, { type: 'boolean', default: fallback }, `${description} As in Kafka: true (any case) is true, any other value false; absent or blank, the default.`);

const CONNECTOR = pathParam('connector');
const TASK = pathParam('task', { type: 'integer', format: 'int32', minimum: 0 });
const PLUGIN = pathParam('pluginName', STRING, 'The class name, an alias, or <package>/<class name>.');
const LOGGER = pathParam('logger', STRING, 'A logger name; "root" is every logger.');

const json = (schema: Schema, description: string, headers?: Schema): Schema => ({
  description,
  content: { 'application/json': { schema } },
  ...(headers ? { headers } : {}),
});
const noBody = (description: string): Schema => ({ description });
const failure = (description: string): Schema => json(ref('ErrorMessage'), description);
const body = (schema: Schema, required = true): Schema => ({ required, content: { 'application/json': { schema } } });

const BAD_REQUEST = failure('Malformed JSON, wrong types or an invalid value; nothing was changed.');
const NOT_FOUND_CONNECTOR = failure('No connector of that name.');
const CONFLICT = failure('The connector exists already, or a concurrent change got there first.');
const TOO_LARGE = failure('The body is larger than rest.body.limit.bytes.');
const UNSUPPORTED = failure('The body is not application/json.');
const UNAUTHORIZED = failure('Credentials are required (rest.auth.* is configured) and were missing or wrong.');

/** Every request that carries a JSON body can also fail these ways. */
const bodyFailures = { '400': BAD_REQUEST, '413': TOO_LARGE, '415': UNSUPPORTED };

type Operation = Schema & { responses: Record<string, Schema> };

/** Adds what every protected operation can answer. */
function protectedOp(operation: Operation): Operation {
  return { ...operation, responses: { ...operation.responses, '401': UNAUTHORIZED } };
}
function publicOp(operation: Operation): Operation {
  return { ...operation, security: [] };
}

const connectorsPaths: Record<string, Record<string, Operation>> = {
  '/': {
    get: publicOp({
      operationId: 'serverInfo',
      tags: ['worker'],
      summary: 'Get details about this worker',
      responses: { '200': json(ref('ServerInfo'), 'The worker\'s version and cluster identity.') },
    }),
  },
  '/health': {
    get: publicOp({
      operationId: 'healthCheck',
      tags: ['worker'],
      summary: 'Health check endpoint to verify worker readiness and liveness',
      responses: {
        '200': json(ref('WorkerStatus'), 'The worker is ready.'),
        '500': json(ref('WorkerStatus'), 'The worker started but cannot handle requests.'),
        '503': json(ref('WorkerStatus'), 'The worker is still starting.'),
      },
    }),
  },
  '/connectors': {
    get: protectedOp({
      operationId: 'listConnectors',
      tags: ['connectors'],
      summary: 'List all active connectors',
      parameters: [
        {
          ...queryParam('expand', arrayOf({ type: 'string', enum: ['status', 'info'] }), 'Repeatable. Unknown values are ignored (and logged), as Kafka does.'),
          style: 'form',
          explode: true,
        },
      ],
      responses: {
        '200': json(
          { oneOf: [arrayOf(STRING), mapOf(ref('ConnectorExpansion'))] },
          'Without expand, the names; with it, an object keyed by name holding the requested status and/or info.',
        ),
      },
    }),
    post: protectedOp({
      operationId: 'createConnector',
      tags: ['connectors'],
      summary: 'Create a new connector',
      requestBody: body(ref('CreateConnectorRequest')),
      responses: {
        '201': json(ref('ConnectorInfo'), 'Created.', { Location: { description: '/connectors/{name}', schema: STRING } }),
        ...bodyFailures,
        '409': CONFLICT,
      },
    }),
  },
  '/connectors/{connector}': {
    get: protectedOp({
      operationId: 'getConnector',
      tags: ['connectors'],
      summary: 'Get the details for the specified connector',
      parameters: [CONNECTOR],
      responses: { '200': json(ref('ConnectorInfo'), 'The connector, secrets hidden.'), '404': NOT_FOUND_CONNECTOR },
    }),
    delete: protectedOp({
      operationId: 'destroyConnector',
      tags: ['connectors'],
      summary: 'Delete the specified connector',
      parameters: [CONNECTOR],
      responses: { '204': noBody('Deleted.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/config': {
    get: protectedOp({
      operationId: 'getConnectorConfig',
      tags: ['connectors'],
      summary: 'Get the configuration for the specified connector',
      parameters: [CONNECTOR],
      responses: { '200': json(STRING_MAP, 'The config: secrets as "[hidden]", placeholders as written.'), '404': NOT_FOUND_CONNECTOR },
    }),
    put: protectedOp({
      operationId: 'putConnectorConfig',
      tags: ['connectors'],
      summary: 'Create or reconfigure the specified connector',
      description: 'A secret sent back as "[hidden]" keeps its stored value.',
      parameters: [CONNECTOR],
      requestBody: body(mapOf({ type: ['string', 'number', 'boolean'] })),
      responses: {
        '200': json(ref('ConnectorInfo'), 'Updated.'),
        '201': json(ref('ConnectorInfo'), 'Created.', { Location: { description: '/connectors/{name}', schema: STRING } }),
        ...bodyFailures,
        '409': CONFLICT,
      },
    }),
    patch: protectedOp({
      operationId: 'patchConnectorConfig',
      tags: ['connectors'],
      summary: 'Merge changes into the configuration of the specified connector',
      description: 'A null value removes the key. A secret sent as "[hidden]" keeps its stored value.',
      parameters: [CONNECTOR],
      requestBody: body(mapOf({ type: ['string', 'number', 'boolean', 'null'] })),
      responses: { '200': json(ref('ConnectorInfo'), 'Updated.'), ...bodyFailures, '404': NOT_FOUND_CONNECTOR, '409': CONFLICT },
    }),
  },
  '/connectors/{connector}/status': {
    get: protectedOp({
      operationId: 'getConnectorStatus',
      tags: ['connectors'],
      summary: 'Get the status for the specified connector',
      parameters: [CONNECTOR],
      responses: { '200': json(ref('ConnectorStateInfo'), 'The connector\'s and its tasks\' states.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/providers': {
    get: protectedOp({
      operationId: 'getConnectorProviders',
      tags: ['connectors'],
      summary: "The circuit breaker of each of the connector's providers, per task running on this worker",
      description:
        'Breakers live in the tasks: each worker answers for the tasks it runs (a task elsewhere is absent). A connector without `providers` shows its own keys as the provider `default`.',
      parameters: [CONNECTOR],
      responses: { '200': json(ref('ConnectorProviders'), 'Provider statuses by task.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/tasks': {
    get: protectedOp({
      operationId: 'getTaskConfigs',
      tags: ['tasks'],
      summary: 'List all tasks and their configurations for the specified connector',
      parameters: [CONNECTOR],
      responses: { '200': json(arrayOf(ref('TaskInfo')), 'Task configs, secrets hidden.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/tasks-config': {
    get: protectedOp({
      operationId: 'getTasksConfig',
      tags: ['tasks'],
      deprecated: true,
      summary: 'Get the configuration of all tasks for the specified connector',
      parameters: [CONNECTOR],
      responses: { '200': json(mapOf(STRING_MAP), 'Task configs keyed "<connector>-<task>", secrets hidden.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/tasks/{task}/status': {
    get: protectedOp({
      operationId: 'getTaskStatus',
      tags: ['tasks'],
      summary: 'Get the state of the specified task for the specified connector',
      parameters: [CONNECTOR, TASK],
      responses: { '200': json(ref('TaskState'), 'The task\'s state.'), '400': BAD_REQUEST, '404': failure('No such connector or task.') },
    }),
  },
  '/connectors/{connector}/tasks/{task}/restart': {
    post: protectedOp({
      operationId: 'restartTask',
      tags: ['tasks'],
      summary: 'Restart the specified task for the specified connector',
      parameters: [CONNECTOR, TASK],
      responses: { '204': noBody('Restart requested.'), '400': BAD_REQUEST, '404': failure('No such connector or task.'), '409': CONFLICT },
    }),
  },
  '/connectors/{connector}/restart': {
    post: protectedOp({
      operationId: 'restartConnector',
      tags: ['connectors'],
      summary: 'Restart the specified connector',
      parameters: [
        CONNECTOR,
        booleanQuery('includeTasks', false, 'Whether to also restart tasks.'),
        booleanQuery('onlyFailed', false, 'Whether to only restart failed tasks/connectors.'),
      ],
      responses: {
        '202': json(ref('ConnectorStateInfo'), 'With includeTasks or onlyFailed: the status, instances being restarted marked RESTARTING.'),
        '204': noBody('Without flags: the connector instance restart was requested.'),
        '400': BAD_REQUEST,
        '404': NOT_FOUND_CONNECTOR,
        '409': CONFLICT,
      },
    }),
  },
  '/connectors/{connector}/pause': {
    put: protectedOp({
      operationId: 'pauseConnector',
      tags: ['connectors'],
      summary: 'Pause the specified connector',
      description: 'This operation is idempotent and has no effects if the connector is already paused',
      parameters: [CONNECTOR],
      responses: { '202': noBody('Pause requested.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/resume': {
    put: protectedOp({
      operationId: 'resumeConnector',
      tags: ['connectors'],
      summary: 'Resume the specified connector',
      description: 'This operation is idempotent and has no effects if the connector is already running',
      parameters: [CONNECTOR],
      responses: { '202': noBody('Resume requested.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/stop': {
    put: protectedOp({
      operationId: 'stopConnector',
      tags: ['connectors'],
      summary: 'Stop the specified connector',
      description: 'This operation is idempotent and has no effects if the connector is already stopped',
      parameters: [CONNECTOR],
      responses: { '204': noBody('Stop requested.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/topics': {
    get: protectedOp({
      operationId: 'getConnectorActiveTopics',
      tags: ['connectors'],
      summary: 'Get the list of topics actively used by the specified connector',
      description:
        'The topics the connector has used since it was created or its topics were last reset: a sink those it has read records from, ' +
        'a source those it has produced to. 403 on a worker with topic.tracking.enable=false.',
      parameters: [CONNECTOR],
      responses: {
        '200': json(mapOf(ref('ActiveTopicsInfo')), 'Keyed by the connector\'s name.'),
        '403': failure('Topic tracking is disabled.'),
        '404': NOT_FOUND_CONNECTOR,
      },
    }),
  },
  '/connectors/{connector}/topics/reset': {
    put: protectedOp({
      operationId: 'resetConnectorActiveTopics',
      tags: ['connectors'],
      summary: 'Reset the list of topics actively used by the specified connector',
      description: 'Forgets the active topics; a running connector adds a topic again when it next uses it. 403 on a worker with topic.tracking.enable=false or topic.tracking.allow.reset=false.',
      parameters: [CONNECTOR],
      responses: { '202': noBody('Reset.'), '403': failure('Topic tracking is disabled. / Topic tracking reset is disabled.'), '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connectors/{connector}/offsets': {
    get: protectedOp({
      operationId: 'getOffsets',
      tags: ['offsets'],
      summary: 'Get the current offsets for the specified connector',
      parameters: [CONNECTOR],
      responses: { '200': json(ref('ConnectorOffsets'), 'Source offsets, or a sink\'s per-shard watermarks.'), '404': NOT_FOUND_CONNECTOR },
    }),
    patch: protectedOp({
      operationId: 'alterConnectorOffsets',
      tags: ['offsets'],
      summary: 'Alter the offsets for the specified connector',
      description: 'The connector must be STOPPED.',
      parameters: [CONNECTOR],
      requestBody: body(ref('ConnectorOffsets')),
      responses: { '200': json(ref('Message'), 'Altered.'), ...bodyFailures, '404': NOT_FOUND_CONNECTOR },
    }),
    delete: protectedOp({
      operationId: 'resetConnectorOffsets',
      tags: ['offsets'],
      summary: 'Reset the offsets for the specified connector',
      description: 'The connector must be STOPPED.',
      parameters: [CONNECTOR],
      responses: { '200': json(ref('Message'), 'Reset.'), '400': BAD_REQUEST, '404': NOT_FOUND_CONNECTOR },
    }),
  },
  '/connector-plugins': {
    get: protectedOp({
      operationId: 'listConnectorPlugins',
      tags: ['plugins'],
      summary: 'List all connector plugins installed',
      parameters: [booleanQuery('connectorsOnly', true, 'Whether to list only connectors instead of all plugins (connectors, then transformations and predicates).')],
      responses: { '200': json(arrayOf(ref('PluginInfo')), 'The connectors this worker can run, and with connectorsOnly=false its transformations and predicates.'), '400': BAD_REQUEST },
    }),
  },
  '/connector-plugins/{pluginName}/config': {
    get: protectedOp({
      operationId: 'getConnectorConfigDef',
      tags: ['plugins'],
      summary: 'Get the configuration definition for the specified pluginName',
      parameters: [PLUGIN],
      responses: { '200': json(arrayOf(ref('ConfigKeyInfo')), 'The plugin\'s own keys, then the common connector keys.'), '404': failure('Unknown plugin.') },
    }),
  },
  '/connector-plugins/{pluginName}/config/validate': {
    put: protectedOp({
      operationId: 'validateConfigs',
      tags: ['plugins'],
      summary: 'Validate the provided configuration against the configuration definition for the specified pluginName',
      description: 'The body must hold connector.class. The answer is 200 even when error_count > 0.',
      parameters: [PLUGIN],
      requestBody: body(mapOf({ type: ['string', 'number', 'boolean', 'null'] })),
      responses: { '200': json(ref('ConfigInfos'), 'The validation result.'), ...bodyFailures },
    }),
  },
  '/admin/loggers': {
    get: protectedOp({
      operationId: 'listLoggers',
      tags: ['admin'],
      summary: 'List the current loggers and their log levels',
      responses: { '200': json(mapOf(ref('LoggerLevel')), 'Keyed by logger name; "root" first.') },
    }),
  },
  '/admin/loggers/{logger}': {
    get: protectedOp({
      operationId: 'getLogger',
      tags: ['admin'],
      summary: 'Get the log level for the specified logger',
      parameters: [LOGGER],
      responses: { '200': json(ref('LoggerLevel'), 'Its level.'), '404': failure('Logger {name} not found.') },
    }),
    put: protectedOp({
      operationId: 'setLevel',
      tags: ['admin'],
      summary: 'Set the log level for the specified logger',
      description:
        'Sets the logger and every logger under it (name + "."). scope=cluster answers 204 but applies to this worker only; an unknown scope is treated as worker (logged).',
      parameters: [LOGGER, queryParam('scope', { type: 'string', default: 'worker' }, 'The scope for the logging modification: worker or cluster.')],
      requestBody: body(object({ level: { type: 'string', description: 'TRACE, DEBUG, INFO, WARN, ERROR, FATAL or OFF (case-insensitive).' } })),
      responses: {
        '200': json(arrayOf(STRING), 'The loggers whose level changed.'),
        '204': noBody('scope=cluster: applied.'),
        ...bodyFailures,
        '404': failure("invalid log level '{x}' (Kafka answers an unknown level with 404)."),
      },
    }),
  },
};

// ---- data plane ----------------------------------------------------------------------------

const RETENTION = { type: 'integer', minimum: 1000, description: 'How long messages are kept (ms).' };
const ITEM_ID = { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' };

schemas.Topic = object(
  {
    name: STRING,
    shards: INT32,
    'retention.ms': RETENTION,
    schema: { ...JSON_OBJECT, description: 'JSON Schema every message value must satisfy.' },
    created_at: INT64,
    reshards: {
      ...arrayOf(object({ at: INT64, from: INT32, to: INT32 })),
      description:
        'Earlier shard counts, oldest first: messages produced before `at` (ms since the epoch) were routed over `from` shards, later ones over `to`. ' +
        'Absent when the count never changed.',
    },
  },
  ['name', 'shards', 'retention.ms', 'created_at'],
);
schemas.ReshardRequest = object({
  shards: { type: 'integer', minimum: 2, maximum: 4096, description: "The new shard count: above the topic's current one." },
});
schemas.CreateTopicRequest = object(
  {
    name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' },
    shards: { type: 'integer', minimum: 1, maximum: 4096, description: 'Fixed at creation, like Kafka partitions.' },
    schema: JSON_OBJECT,
    'retention.ms': RETENTION,
  },
  ['name', 'shards'],
);
schemas.ProduceItem = object(
  {
    key: { type: 'string', minLength: 1, description: 'The routing key (usually the recipient): it decides the shard.' },
    value: {
      description:
        "Any JSON; checked against the topic's schema and its sinks' value schemas. A value with `template: {name, variables, locale?, version?}` " +
        "is rendered from that template at produce (its live version unless it names one) and stored rendered, with the headers " +
        'omnibus.template.name, .version and .locale; a missing variable refuses the produce (400). A WhatsApp `type: "template"` value is Meta\'s own and is not rendered.',
    },
    headers: STRING_MAP,
    id: { ...ITEM_ID, description: 'Makes the produce idempotent.' },
    group: { ...ITEM_ID, description: 'A batch or campaign id.' },
    category: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9._-]{0,63}$',
      description:
        'The message\'s category (e.g. marketing, transactional), checked against the suppression list: a suppression of this category or of `all` for a recipient keeps it back (`suppressed`). Kept in the header omnibus.category (which may be set directly). Not `all`.',
    },
    critical: {
      type: 'boolean',
      description: 'A critical message (a security alert, a fraud warning) is not kept back by a category suppression (a preference), only by one of `all` (a STOP, an opt-out, a hard bounce). Kept in the header omnibus.critical.',
    },
    expires_at: {
      oneOf: [{ type: 'string', format: 'date-time' }, { type: 'integer', minimum: 0 }],
      description:
        'When the message stops being worth sending (RFC 3339 time, or ms since the epoch): no sink is handed it after; it ends `expired` for each sink that had not sent it. Kept in the header omnibus.expires.at.',
    },
  },
  ['key', 'value'],
);
schemas.ProduceRequest = object({ messages: arrayOf(ref('ProduceItem')), group: { ...ITEM_ID, description: 'Group of the items that name none.' } }, [
  'messages',
]);
schemas.ProduceResponse = object({ messages: arrayOf(object({ id: STRING, shard: INT32 })) });
schemas.Route = object({
  key: STRING,
  token: { type: 'string', pattern: '^-?\\d+$', description: "Cassandra's Murmur3 token, as a decimal string." },
  shard: INT32,
});
schemas.BusMessage = object(
  {
    id: STRING,
    topic: STRING,
    key: STRING,
    token: { type: 'string', pattern: '^-?\\d+$' },
    shard: INT32,
    value: {},
    headers: STRING_MAP,
    group: STRING,
    created_at: INT64,
  },
  ['id', 'topic', 'key', 'token', 'shard', 'value', 'headers', 'created_at'],
);
const DELIVERY_STATE = { type: 'string', enum: ['pending', 'sending', 'retrying', 'sent', 'delivered', 'read', 'failed', 'dead', 'unknown', 'filtered', 'expired', 'cancelled', 'suppressed'] };
const CODED_ERROR = object({ code: STRING, message: STRING });
schemas.Delivery = object(
  {
    connector: STRING,
    state: DELIVERY_STATE,
    attempts: INT32,
    epoch: INT64,
    worker_id: STRING,
    provider_id: STRING,
    last_error: CODED_ERROR,
    next_attempt_at: INT64,
    updated_at: INT64,
  },
  ['connector', 'state', 'attempts', 'epoch', 'worker_id', 'updated_at'],
);
schemas.MessageEvent = object(
  { at: INT64, type: STRING, connector: STRING, worker_id: STRING, detail: JSON_OBJECT },
  ['at', 'type'],
);
schemas.MessageTrace = object(
  {
    message: ref('BusMessage'),
    template: {
      ...object({ name: STRING, version: { type: 'integer', minimum: 1 }, locale: STRING }),
      description: 'The template the message was rendered from at produce (its omnibus.template.* headers), when it named one.',
    },
    deliveries: arrayOf(ref('Delivery')),
    events: arrayOf(ref('MessageEvent')),
  },
  ['message', 'deliveries', 'events'],
);

// ---- scheduling: send_at, quiet hours, channel fallback (bus/scheduler.ts, quiet-hours.ts, fallback.ts) ----
{
  const INSTANT = { oneOf: [{ type: 'string', format: 'date-time' }, { type: 'integer', minimum: 0 }] };
  schemas.QuietHours = {
    ...object({
      start: { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$', description: 'HH:MM, 24-hour, inclusive.' },
      end: { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$', description: 'HH:MM, 24-hour, exclusive; before start when the window wraps midnight.' },
      time_zone: { type: 'string', description: 'An IANA time zone name, e.g. Europe/Paris (daylight saving included).' },
    }),
    description: "A daily window in the recipient's time zone during which messages are not sent: one produced inside it is held until it ends.",
  };
  const properties = (name: string) => schemas[name]!.properties as Record<string, Schema>;
  Object.assign(properties('ProduceItem'), {
    send_at: {
      ...INSTANT,
      description:
        'Hand the message to no sink before this time (RFC 3339 time with a zone, or ms since the epoch). A future one is held by due time, not in the buffer, ' +
        'and released within about a second of it by the worker that runs the scheduler; a past one is sent at once. Kept in the header omnibus.send.at. ' +
        'An expires_at must be after it.',
    },
    quiet_hours: {
      oneOf: [ref('QuietHours'), { type: 'boolean', enum: [false] }],
      description: "This message's quiet hours, instead of its topic's; false: none, whatever the topic's. A send_at inside them moves to their end.",
    },
  });
  Object.assign(properties('Topic'), { quiet_hours: ref('QuietHours') });
  Object.assign(properties('CreateTopicRequest'), {
    quiet_hours: { ...ref('QuietHours'), description: 'Quiet hours for every message of the topic that names none of its own.' },
  });
  const produced = (schemas.ProduceResponse!.properties as Record<string, Schema>).messages!.items as Schema;
  Object.assign(produced.properties as Record<string, Schema>, {
    send_at: { ...INT64, description: 'When a held message is due (ms since the epoch); absent when it went to the buffer at once.' },
  });
  schemas.Fallback = {
    ...object(
      {
        topic: { type: 'string', description: 'The topic of the fallback message (another channel); it must exist.' },
        value: { description: "The fallback message's value, checked against that topic's schema and its sinks' value schemas at produce." },
        key: { type: 'string', minLength: 1, description: "Its routing key; the original's by default." },
        after_ms: { type: 'integer', minimum: 0, description: 'Its deadline, this long after the original is due (now, or its send_at).' },
        deadline: { ...INSTANT, description: 'Its deadline as a time (instead of after_ms).' },
        unless: {
          type: 'array',
          items: { type: 'string', enum: ['sent', 'delivered', 'read'] },
          description: 'States of the original that cancel the fallback by its deadline (default delivered, read).',
        },
        connector: { type: 'string', description: "The original's connector whose state counts (default: any sink of its topic)." },
      },
      ['topic', 'value'],
    ),
    description:
      'Another message, held until the deadline and then produced once (id `<original id>:fallback`, header omnibus.fallback.of) unless the original reached ' +
      'one of the `unless` states; produced at once when the original fails for good (failed, dead).',
  };
  Object.assign(properties('ProduceItem'), { fallback: ref('Fallback') });
  Object.assign(properties('MessageTrace'), {
    fallback_id: { type: 'string', description: "The id of this message's fallback (held, produced or cancelled: see the events fallback and fallback_cancelled)." },
    fallback_of: { type: 'string', description: 'The message this one is the fallback of.' },
  });
  Object.assign(properties('MessageTrace'), {
    state: { type: 'string', enum: ['scheduled'], description: 'Present while the message is held (send_at, quiet hours): not in the buffer yet, no deliveries.' },
    send_at: { ...INT64, description: 'When a held message is due (ms since the epoch).' },
    scheduled_by: { type: 'string', enum: ['send_at', 'quiet_hours', 'fallback'], description: 'Why it is held.' },
  });
}

// ---- message priorities (bus/priority-lanes.ts) ----
{
  const PRIORITY = { type: 'string', enum: ['high', 'normal', 'low'] };
  const properties = (name: string) => schemas[name]!.properties as Record<string, Schema>;
  Object.assign(properties('ProduceItem'), {
    priority: {
      ...PRIORITY,
      default: 'normal',
      description:
        "How urgently the message goes out when it shares a connector's capacity (its rate limit, its provider's window) with others: high ones are read " +
        'and handed over ahead of a normal backlog, low ones only after normal ones (each lower priority still gets at least one record in ten while it ' +
        'waits). Order per key is kept within a priority, not across priorities. Kept in the header omnibus.priority (high and low only).',
    },
  });
  Object.assign(properties('BusMessage'), { priority: { ...PRIORITY, description: 'Its priority (normal unless produced high or low).' } });
}

const TEMPLATE_PARTS = mapOf(mapOf(STRING));
schemas.TemplateContent = {
  type: 'object',
  description:
    'A template version: its channel, its default locale and, per locale, its parts in Liquid (email: subject, html and/or text; sms: text; ' +
    'whatsapp: text). Every variable must be given at render; the html part escapes every output.',
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$', description: 'POST /templates only.' },
    channel: { enum: ['email', 'sms', 'whatsapp'] },
    default_locale: { ...STRING, description: 'The locale a render falls back to; required with several locales.' },
    locales: { ...TEMPLATE_PARTS, description: 'Per locale (en, fr, pt-BR…), each part\'s Liquid text.' },
    live: { type: 'boolean', description: 'POST /templates/{name}/versions only: make the new version live (default false).' },
  },
  required: ['channel', 'locales'],
};
schemas.Template = object({ name: STRING, live_version: { type: 'integer' }, latest_version: { type: 'integer' }, created_at: INT64, updated_at: INT64 });
schemas.TemplateVersion = object({ name: STRING, version: { type: 'integer' }, channel: STRING, default_locale: STRING, locales: TEMPLATE_PARTS, created_at: INT64 });
schemas.TemplateWithLive = object({
  name: STRING,
  live_version: { type: 'integer' },
  latest_version: { type: 'integer' },
  created_at: INT64,
  updated_at: INT64,
  live: ref('TemplateVersion'),
});
const SMS_SEGMENTS = object({ encoding: { enum: ['GSM7', 'UCS2'] }, segments: { type: 'integer' }, units: { type: 'integer', description: 'Septets (GSM-7) or UTF-16 units (UCS-2).' } });
schemas.TemplateWritten = object(
  {
    template: ref('Template'),
    version: ref('TemplateVersion'),
    sms: { ...mapOf(SMS_SEGMENTS), description: "SMS templates: per locale, the alphabet and segment count of the template's fixed text (what any render costs at least)." },
  },
  ['template', 'version'],
);
schemas.TemplatePreviewRequest = object(
  { variables: mapOf({}), locale: STRING, version: { type: 'integer', minimum: 1, description: 'The live version when absent.' } },
  [],
);
schemas.TemplatePreview = object(
  { name: STRING, version: { type: 'integer' }, locale: { ...STRING, description: 'The locale rendered, after fallback.' }, parts: mapOf(STRING), sms: SMS_SEGMENTS },
  ['name', 'version', 'locale', 'parts'],
);
schemas.TopicMessages = object(
  {
    messages: arrayOf(ref('BusMessage')),
    next_since: { ...INT64, description: 'Present when more may follow: the since of the next page (inclusive, so skip the ids already seen).' },
  },
  ['messages'],
);
schemas.ClusterWorkers = object({
  workers: arrayOf(
    object({
      worker_id: { type: 'string', description: 'host:port of the advertised URL, as statuses name workers.' },
      url: STRING,
      started_at: INT64,
      heartbeat_at: INT64,
      heartbeat_age_ms: INT64,
      worker_groups: { ...arrayOf(STRING), description: 'The worker groups it belongs to (its worker.groups); connectors naming one of them may run tasks there.' },
    }),
  ),
});
schemas.GroupSummary = object({
  group: STRING,
  messages: { type: 'integer', description: 'Messages produced with this group (exact, kept as they are produced; those held for later included).' },
  truncated: { type: 'boolean', description: 'Always false: the counts are exact whatever the group\'s size (kept for older clients).' },
  connectors: {
    ...mapOf(mapOf({ type: 'integer' })),
    description:
      'Per connector, the number of messages in each state (exact, kept as the states change): `scheduled` while held for later (send_at, quiet hours; shown for every connector reading the topic), `pending` until the sink writes a state, then that state (sending, retrying, sent, delivered, read, failed, dead, unknown, filtered, expired, cancelled, suppressed).',
  },
});

// Cancellation (DELETE /messages/{id}, DELETE /groups/{group})
schemas.CancelOutcome = object(
  {
    cancelled: { type: 'integer', description: 'Not handed to the provider (held for later, pending or retrying): they end `cancelled` and are never sent.' },
    in_flight: { type: 'integer', description: 'Being handed to the provider at that instant (`sending`): not stopped.' },
    already: { ...mapOf({ type: 'integer' }), description: 'Past hand-off, by state (sent, delivered, failed…).' },
  },
  ['cancelled', 'in_flight', 'already'],
);
schemas.MessageCancel = object({ id: STRING, connectors: { ...mapOf(ref('CancelOutcome')), description: 'Per sink connector reading the message\'s topic.' } }, [
  'id',
  'connectors',
]);
schemas.GroupCancel = object(
  { group: STRING, messages: { type: 'integer' }, connectors: { ...mapOf(ref('CancelOutcome')), description: 'Per sink connector reading the group\'s topics.' } },
  ['group', 'messages', 'connectors'],
);

schemas.WakeHints = {
  type: 'object',
  description: 'Shards a worker wrote to. Unknown fields are ignored, so that workers of different versions can share a cluster.',
  properties: {
    shards: {
      ...arrayOf(
        object({
          topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' },
          shard: { type: 'integer', minimum: 0, maximum: 4095 },
          from: {
            ...INT64,
            minimum: 0,
            description: 'The entries written since the previous hint are stamped this or later (ms since the epoch): the consumers read again from there, for a write that became visible after their reads had passed its stamp.',
          },
        }),
      ),
      maxItems: MAX_WAKE_SHARDS,
    },
    at: {
      ...INT64,
      minimum: 0,
      description: `The sender's clock when it sent the hint (ms since the epoch); a receiver whose clock is behind wakes its consumers once its clock reaches it (waiting at most ${MAX_CLOCK_WAIT_MS} ms).`,
    },
  },
  required: ['shards'],
  additionalProperties: true,
};

const TOPIC = pathParam('topic');
const TEMPLATE = pathParam('name', STRING, 'The template name.');

const dataPlanePaths: Record<string, Record<string, Operation>> = {
  '/topics': {
    get: protectedOp({ operationId: 'listTopics', tags: ['bus'], summary: 'List the topics', responses: { '200': json(arrayOf(ref('Topic')), 'The topics.') } }),
    post: protectedOp({
      operationId: 'createTopic',
      tags: ['bus'],
      summary: 'Create a topic',
      requestBody: body(ref('CreateTopicRequest')),
      responses: { '201': json(ref('Topic'), 'Created.'), ...bodyFailures, '409': failure('A topic of that name exists.') },
    }),
  },
  '/topics/{topic}': {
    get: protectedOp({
      operationId: 'getTopic',
      tags: ['bus'],
      summary: 'Get a topic',
      parameters: [TOPIC],
      responses: { '200': json(ref('Topic'), 'The topic.'), '404': failure('No such topic.') },
    }),
  },
  '/topics/{topic}/shards': {
    put: protectedOp({
      operationId: 'reshardTopic',
      tags: ['bus'],
      summary: "Raise a topic's shard count while it is in use",
      description:
        'The new count applies to messages produced from its switch time on, 10 s after the request (every worker learns it by then); the answer ' +
        "lists it under reshards. Each key's order is kept across the change: a sink hands over a moved key's messages in its new shard only once " +
        'its older messages in the old shard are handled. Shard counts only grow.',
      parameters: [TOPIC],
      requestBody: body(ref('ReshardRequest')),
      responses: {
        '200': json(ref('Topic'), 'The topic with its new count and switch time.'),
        '400': failure('shards missing, not above the current count, or above 4096 (errors.shards says which).'),
        '404': failure('No such topic.'),
        '409': failure('The shard count changed meanwhile; read the topic again.'),
      },
    }),
  },
  '/topics/{topic}/messages': {
    get: protectedOp({
      operationId: 'browseMessages',
      tags: ['bus'],
      summary: "A topic's messages in time order (e.g. a dead-letter topic's)",
      description: 'Every shard, merged by creation time then id; page on with next_since.',
      parameters: [
        TOPIC,
        queryParam('since', { ...INT64, minimum: 0, default: 0 }, 'Oldest creation time (ms since the epoch), inclusive.'),
        queryParam('limit', { type: 'integer', minimum: 1, maximum: 500, default: 100 }, 'Most messages in the page.'),
        queryParam('key', { type: 'string', minLength: 1 }, "Only this key's messages (its shard is read, at most 20,000 messages per request; next_since goes on)."),
      ],
      responses: { '200': json(ref('TopicMessages'), 'A page of messages.'), '400': failure('A bad since, limit or key.'), '404': failure('No such topic.') },
    }),
    post: protectedOp({
      operationId: 'produceMessages',
      tags: ['bus'],
      summary: 'Publish messages to a topic',
      description: 'A batch is validated whole: either every message is accepted or none is.',
      parameters: [TOPIC],
      requestBody: body(ref('ProduceRequest')),
      responses: {
        '202': json(ref('ProduceResponse'), 'Accepted: written and acknowledged by the store.'),
        ...bodyFailures,
        '404': failure('No such topic.'),
        '413': failure('Too many messages, or too many bytes, in one batch (or a body over rest.body.limit.bytes).'),
        '422': failure('Some messages are invalid; `errors` names each one ({index, field, message}). Nothing was written.'),
      },
    }),
  },
  '/topics/{topic}/route': {
    get: protectedOp({
      operationId: 'routeKey',
      tags: ['bus'],
      summary: 'The token and shard of a key',
      parameters: [TOPIC, { ...queryParam('key', STRING, 'The routing key.'), required: true }],
      responses: { '200': json(ref('Route'), 'Where the key goes.'), '400': BAD_REQUEST, '404': failure('No such topic.') },
    }),
  },
  '/messages/{id}': {
    get: protectedOp({
      operationId: 'getMessage',
      tags: ['bus'],
      summary: 'A message, its deliveries and its events',
      parameters: [pathParam('id')],
      responses: { '200': json(ref('MessageTrace'), 'The message\'s trace.'), '404': failure('No such message.') },
    }),
    delete: protectedOp({
      operationId: 'cancelMessage',
      tags: ['bus'],
      summary: 'Cancel a message where no sink has handed it to its provider yet',
      description:
        'Stored by message id, checked by every sink just before hand-off (also when the message becomes due later). Answers per connector what was cancelled, what was in flight and what was already sent.',
      parameters: [pathParam('id')],
      responses: { '200': json(ref('MessageCancel'), 'What the cancel stopped, per connector.'), '404': failure('No such message (the message names the id).') },
    }),
  },
  '/groups/{group}': {
    get: protectedOp({
      operationId: 'getGroup',
      tags: ['bus'],
      summary: 'Delivery counts by state for a group of messages',
      description: 'Messages held for later (send_at, quiet hours) are counted from their produce, as `scheduled`, until released.',
      parameters: [pathParam('group')],
      responses: { '200': json(ref('GroupSummary'), 'Counts by state.'), '404': failure('No message has this group.') },
    }),
    delete: protectedOp({
      operationId: 'cancelGroup',
      tags: ['bus'],
      summary: 'Cancel every message of a group that no sink has handed off yet',
      description:
        'The group stays cancelled: a message produced with it later is cancelled too. A group held whole for later (send_at, quiet hours) can be cancelled before any of it is due: its messages count as cancelled and settle `cancelled` when released. Answers per connector what was cancelled, in flight or already sent.',
      parameters: [pathParam('group')],
      responses: { '200': json(ref('GroupCancel'), 'What the cancel stopped, per connector.'), '404': failure('No message has this group.') },
    }),
  },
  '/templates': {
    get: protectedOp({ operationId: 'listTemplates', tags: ['templates'], summary: 'List the templates', responses: { '200': json(arrayOf(ref('Template')), 'The templates.') } }),
    post: protectedOp({
      operationId: 'createTemplate',
      tags: ['templates'],
      summary: 'Create a template with its first version, live',
      requestBody: body(ref('TemplateContent')),
      responses: { '201': json(ref('TemplateWritten'), 'Created.'), ...bodyFailures, '409': failure('A template of that name exists.') },
    }),
  },
  '/templates/{name}': {
    get: protectedOp({
      operationId: 'getTemplate',
      tags: ['templates'],
      summary: 'A template and its live version',
      parameters: [TEMPLATE],
      responses: { '200': json(ref('TemplateWithLive'), 'The template.'), '404': failure('No such template.') },
    }),
    put: protectedOp({
      operationId: 'putTemplate',
      tags: ['templates'],
      summary: 'Create the template, or add a version to it; the version written is live',
      parameters: [TEMPLATE],
      requestBody: body(ref('TemplateContent')),
      responses: {
        '200': json(ref('TemplateWritten'), 'A new version, live.'),
        '201': json(ref('TemplateWritten'), 'Created.'),
        ...bodyFailures,
        '409': failure('Other writers kept changing the template.'),
      },
    }),
    delete: protectedOp({
      operationId: 'deleteTemplate',
      tags: ['templates'],
      summary: 'Delete a template and all its versions',
      description: 'Messages already rendered from it keep their content.',
      parameters: [TEMPLATE],
      responses: { '204': noBody('Deleted.'), '404': failure('No such template.') },
    }),
  },
  '/templates/{name}/versions': {
    get: protectedOp({
      operationId: 'listTemplateVersions',
      tags: ['templates'],
      summary: "A template's versions",
      parameters: [TEMPLATE],
      responses: { '200': json(arrayOf(ref('TemplateVersion')), 'Every version, oldest first.'), '404': failure('No such template.') },
    }),
    post: protectedOp({
      operationId: 'addTemplateVersion',
      tags: ['templates'],
      summary: 'Add a version (live only with live: true)',
      parameters: [TEMPLATE],
      requestBody: body(ref('TemplateContent')),
      responses: { '201': json(ref('TemplateWritten'), 'Written.'), ...bodyFailures, '404': failure('No such template.'), '409': failure('Other writers kept changing the template.') },
    }),
  },
  '/templates/{name}/versions/{version}': {
    get: protectedOp({
      operationId: 'getTemplateVersion',
      tags: ['templates'],
      summary: 'One version of a template',
      parameters: [TEMPLATE, pathParam('version', { type: 'integer', minimum: 1 })],
      responses: { '200': json(ref('TemplateVersion'), 'The version.'), '400': BAD_REQUEST, '404': failure('No such template or version.') },
    }),
  },
  '/templates/{name}/live': {
    put: protectedOp({
      operationId: 'setLiveTemplateVersion',
      tags: ['templates'],
      summary: 'Choose the version produces render when they name none',
      parameters: [TEMPLATE],
      requestBody: body(object({ version: { type: 'integer', minimum: 1 } })),
      responses: { '200': json(ref('Template'), 'The template.'), ...bodyFailures, '404': failure('No such template or version.'), '409': failure('Other writers kept changing the template.') },
    }),
  },
  '/templates/{name}/preview': {
    post: protectedOp({
      operationId: 'previewTemplate',
      tags: ['templates'],
      summary: 'Render a template with sample variables, without sending',
      parameters: [TEMPLATE],
      requestBody: body(ref('TemplatePreviewRequest')),
      responses: { '200': json(ref('TemplatePreview'), 'The rendered parts.'), ...bodyFailures, '404': failure('No such template or version.') },
    }),
  },
  '/internal/wake': {
    post: protectedOp({
      operationId: 'wakeShards',
      tags: ['internal'],
      summary: "Wake this worker's consumers of shards another worker wrote to",
      description:
        'Sent by the workers of a cluster to each other after a produce, so that a consumer on another worker than the ' +
        'producer reads at once instead of at its next idle poll. Only a hint: a lost one delays messages until that poll, ' +
        'never loses them. Shards nobody here consumes are ignored. Under rest.auth.*, the sender authenticates with its ' +
        'first bearer token (else its first basic user): every worker must accept it.',
      requestBody: body(ref('WakeHints')),
      responses: { '204': noBody('Accepted: the local consumers of those shards read soon.'), ...bodyFailures },
    }),
  },
};

// ---- webhooks, metrics, this document ------------------------------------------------------

const hookOperation = (method: string, nested: boolean): Operation =>
  publicOp({
    operationId: `webhook${method[0]?.toUpperCase()}${method.slice(1)}${nested ? 'Path' : ''}`,
    tags: ['webhooks'],
    summary: 'A provider calls the connector back (delivery receipts, inbound status)',
    description:
      'Any method. Outside control-plane auth: the connector verifies the provider\'s signature over the raw body. ' +
      'The status, headers and body are the connector\'s.' +
      (nested ? ' `path` may span several segments.' : ''),
    parameters: [CONNECTOR, ...(nested ? [pathParam('path', STRING, 'The rest of the path, passed to the connector.')] : [])],
    requestBody: { required: false, content: { '*/*': { schema: {} } } },
    responses: {
      default: { description: 'The connector\'s answer.' },
      '404': failure('No such connector, or it has no webhook.'),
      '413': TOO_LARGE,
    },
  });

const HOOK_METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

const otherPaths: Record<string, Record<string, Operation>> = {
  '/hooks/{connector}': Object.fromEntries(HOOK_METHODS.map((m) => [m, hookOperation(m, false)])),
  '/hooks/{connector}/{path}': Object.fromEntries(HOOK_METHODS.map((m) => [m, hookOperation(m, true)])),
  '/metrics': {
    get: protectedOp({
      operationId: 'metrics',
      tags: ['worker'],
      summary: 'Prometheus metrics',
      responses: { '200': { description: 'The text exposition format.', content: { 'text/plain': { schema: STRING } } } },
    }),
  },
  '/workers': {
    get: protectedOp({
      operationId: 'listWorkers',
      tags: ['worker'],
      summary: 'The live workers of the cluster and their last heartbeats',
      responses: { '200': json(ref('ClusterWorkers'), 'Workers whose heartbeat has not expired.') },
    }),
  },
  '/openapi.json': {
    get: publicOp({
      operationId: 'openApi',
      tags: ['worker'],
      summary: 'This document',
      responses: { '200': json(JSON_OBJECT, 'OpenAPI 3.1.') },
    }),
  },
};

// ---- backlog: what waits per connector, topic and shard (rest/backlog.ts) -----------------------

const backlogFigures = {
  waiting: { type: 'integer', description: 'Messages not finished: read and waiting, or not read yet.' },
  oldest_waiting_ms: { ...INT64, description: 'Age of the oldest of them (ms); 0 when none waits.' },
} as const;
schemas.BacklogShard = object({
  topic: STRING,
  shard: { type: 'integer' },
  task: { ...nullable({ type: 'integer' }), description: 'The task holding the shard; null when no live worker holds it (nothing read waits there).' },
  worker_id: nullable(STRING),
  ...backlogFigures,
});
const UNREACHABLE = { ...arrayOf(STRING), description: 'Workers that did not answer in time: their shards show 0.' };
schemas.ConnectorBacklog = object({ name: STRING, ...backlogFigures, shards: arrayOf(ref('BacklogShard')), workers_unreachable: UNREACHABLE });
schemas.TopicBacklog = object({
  topic: STRING,
  connectors: arrayOf(object({ name: STRING, ...backlogFigures, shards: arrayOf(ref('BacklogShard')) })),
  workers_unreachable: UNREACHABLE,
});
schemas.WorkerBacklog = object({
  worker_id: STRING,
  shards: arrayOf(
    object({ connector: STRING, task: { type: 'integer' }, topic: STRING, shard: { type: 'integer' }, waiting: { type: 'integer' }, oldest_ts: nullable(INT64) }),
  ),
});

const backlogPaths: Record<string, Record<string, Operation>> = {
  '/connectors/{connector}/backlog': {
    get: protectedOp({
      operationId: 'connectorBacklog',
      tags: ['bus'],
      summary: "A sink connector's messages waiting and the age of the oldest, per shard and in total, over the cluster",
      parameters: [CONNECTOR],
      responses: { '200': json(ref('ConnectorBacklog'), 'From every live worker.'), '404': failure('No such connector.') },
    }),
  },
  '/topics/{topic}/backlog': {
    get: protectedOp({
      operationId: 'topicBacklog',
      tags: ['bus'],
      summary: "Each sink connector's messages waiting on a topic and the age of the oldest, per shard and in total",
      parameters: [TOPIC],
      responses: { '200': json(ref('TopicBacklog'), 'From every live worker.'), '404': failure('No such topic.') },
    }),
  },
  '/internal/backlog': {
    get: protectedOp({
      operationId: 'workerBacklog',
      tags: ['internal'],
      summary: 'The backlog of the shards the sink tasks of this worker hold (the other workers gather it)',
      responses: { '200': json(ref('WorkerBacklog'), "This worker's shards.") },
      }),
    },
};

// ---- suppression list and inbound messages ----------------------------------------------------

const CONSENT_CHANNEL: Schema = { type: 'string', enum: ['email', 'sms', 'whatsapp'] };
const SUPPRESSION_CATEGORY: Schema = {
  type: 'string',
  pattern: '^(all|[a-z0-9][a-z0-9._-]{0,63})$',
  description: '`all` (every message on the channel, critical ones too) or a message category (messages of that category that are not critical).',
};
const SUPPRESSION_REASON: Schema = { type: 'string', enum: ['manual', 'stop', 'opted-out', 'hard-bounce', 'blocked'] };
schemas.Suppression = object(
  {
    channel: CONSENT_CHANNEL,
    address: { type: 'string', description: 'Normalised: E.164 for sms and whatsapp (+33612345678), lower-case for email.' },
    category: SUPPRESSION_CATEGORY,
    reason: SUPPRESSION_REASON,
    code: { type: 'string', description: 'What set it: the provider\'s code (21610, 550 5.1.1, 131050) or the keyword received (STOP).' },
    connector: { type: 'string', description: 'The connector that reported it.' },
    note: STRING,
    created_at: INT64,
  },
  ['channel', 'address', 'category', 'reason', 'created_at'],
);
schemas.SuppressionRequest = object(
  {
    channel: CONSENT_CHANNEL,
    address: { type: 'string', description: 'A phone number in international form (E.164; spaces, dashes and a 00 prefix are accepted) or an e-mail address.' },
    category: { ...SUPPRESSION_CATEGORY, default: 'all' },
    reason: { ...SUPPRESSION_REASON, default: 'manual' },
    note: { type: 'string', maxLength: 500 },
  },
  ['channel', 'address'],
);
schemas.SuppressionPage = object(
  { suppressions: arrayOf(ref('Suppression')), next_cursor: { type: 'string', description: 'Present when more may follow: pass it as cursor.' } },
  ['suppressions'],
);
schemas.AddressSuppressions = object({ channel: CONSENT_CHANNEL, address: STRING, suppressions: arrayOf(ref('Suppression')) });
schemas.InboundMessage = object(
  {
    channel: { type: 'string', enum: ['sms', 'whatsapp'] },
    connector: { type: 'string', description: 'The connector that received it.' },
    from: { type: 'string', description: 'The sender, E.164 (also the message key).' },
    to: { type: 'string', description: 'Our number, short code or WhatsApp phone number id.' },
    type: { type: 'string', description: 'text, button (a quick-reply button), interactive (a reply button or list), opt-out, or the provider\'s type.' },
    text: { type: 'string', description: 'The text, or the button\'s title.' },
    button: object({ payload: STRING, text: STRING }, []),
    keyword: { type: 'string', enum: ['stop', 'start'], description: 'The text was one of inbound.stop.keywords / inbound.start.keywords (or the provider reported an opt-out or opt-in): the sender was suppressed on this channel, or lifted.' },
    provider_message_id: { type: 'string', description: 'Twilio\'s MessageSid, WhatsApp\'s wamid; absent for SMPP (deliver_sm has none).' },
    received_at: INT64,
  },
  ['channel', 'connector', 'from', 'type', 'received_at'],
  {
    description:
      "The value of a message on a connector's inbound.topic: one message someone sent to us. Keyed by `from`; headers omnibus.inbound.channel and omnibus.inbound.connector. " +
      "The bus message's id is derived from the connector and the provider's id when there is one (Twilio, WhatsApp), so a provider's retry is kept once.",
  },
);

const CHANNEL_PARAM = pathParam('channel', CONSENT_CHANNEL, 'email, sms or whatsapp.');
const ADDRESS_PARAM = pathParam('address', STRING, 'The address, URL-encoded (+ as %2B); normalised as in the list.');

const suppressionPaths: Record<string, Record<string, Operation>> = {
  '/suppressions': {
    get: protectedOp({
      operationId: 'listSuppressions',
      tags: ['suppressions'],
      summary: 'The suppression list, page by page',
      parameters: [
        queryParam('limit', { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, 'Most entries in the page.'),
        queryParam('cursor', STRING, 'next_cursor of the previous page.'),
      ],
      responses: { '200': json(ref('SuppressionPage'), 'A page of entries.'), '400': failure('A bad limit or cursor.') },
    }),
    post: protectedOp({
      operationId: 'addSuppression',
      tags: ['suppressions'],
      summary: 'Suppress an address on a channel (all categories, or one)',
      description: 'Replaces the entry of the same channel, address and category. An address that cannot be read for the channel is refused (400 naming the field); nothing is stored.',
      requestBody: body(ref('SuppressionRequest')),
      responses: { '201': json(ref('Suppression'), 'Stored.'), ...bodyFailures },
    }),
  },
  '/suppressions/{channel}/{address}': {
    get: protectedOp({
      operationId: 'getSuppressions',
      tags: ['suppressions'],
      summary: "An address's entries on a channel",
      parameters: [CHANNEL_PARAM, ADDRESS_PARAM],
      responses: { '200': json(ref('AddressSuppressions'), 'Its entries.'), '400': BAD_REQUEST, '404': failure('The address is not suppressed on this channel.') },
    }),
    delete: protectedOp({
      operationId: 'deleteSuppressions',
      tags: ['suppressions'],
      summary: "Lift an address's suppression on a channel",
      parameters: [CHANNEL_PARAM, ADDRESS_PARAM, queryParam('category', STRING, 'Remove only this category\'s entry (`all` included); every entry when absent.')],
      responses: { '204': noBody('Removed.'), '400': BAD_REQUEST, '404': failure('Nothing to remove.') },
    }),
  },
};

// ---- delivery events out: what a WebhookSink POSTs (bus/delivery-events.ts, packages/connector-webhook) ----
schemas.DeliveryEvent = object(
  {
    event_id: { type: 'string', description: '<message id>:<state>:<12 hex of sha256(connector)> (retrying.<attempt> for a retry): the same change published again has the same id.' },
    type: { type: 'string', description: 'message.<state>' },
    state: {
      type: 'string',
      description: 'The state the message moved to for the connector: sent, retrying, failed, dead, unknown, filtered, expired, cancelled, suppressed, or a receipt\'s delivered, read, failed.',
    },
    message_id: STRING,
    topic: { type: 'string', description: "The message's topic." },
    connector: { type: 'string', description: 'The sink connector whose state changed.' },
    at: { ...INT64, description: "When the change happened (ms since the epoch): the provider's time for a receipt." },
    group: STRING,
    provider_id: STRING,
    attempts: { type: 'integer', minimum: 1 },
    error: CODED_ERROR,
    receipt: { type: 'boolean', const: true, description: "Present when the change came from a provider's receipt." },
  },
  ['event_id', 'type', 'state', 'message_id', 'topic', 'connector', 'at'],
);
schemas.WebhookBatchItem = object({
  id: { type: 'string', description: 'The record\'s id (a delivery event\'s event_id): deduplicate on it.' },
  topic: STRING,
  key: STRING,
  attempt: { type: 'integer', minimum: 1 },
  value: { description: 'The record\'s value (a DeliveryEvent for the events topic).' },
});

const headerParameter = (name: string, description: string): Schema => ({ name, in: 'header', required: true, description, schema: STRING });
const SIGNATURE_PARAMETER = headerParameter(
  'Omnibus-Signature',
  't=<unix seconds>,v1=<hex HMAC-SHA256(webhook.signing.secret, "<t>.<raw body>")>: verify it over the raw body and refuse an old t.',
);
const WEBHOOK_ANSWERS = {
  '2XX': { description: 'Taken: not posted again (unless an answer was lost).' },
  '408': { description: 'Retried with backoff.' },
  '429': { description: 'Retried with backoff, after Retry-After when given.' },
  '5XX': { description: 'Retried with backoff, after Retry-After when given (as are network errors and timeouts).' },
  default: { description: 'Any other answer fails the record(s) for good (dead-letter topic if set).' },
};

/** Calls the runtime makes (OpenAPI 3.1 webhooks): WebhookSink's POSTs to `webhook.url`. */
const outgoingWebhooks: Record<string, Record<string, Operation>> = {
  deliveryEvent: {
    post: {
      summary: 'WebhookSink: one record per POST (webhook.batch.max.records=1, the default)',
      description: 'The record\'s value as the body: a DeliveryEvent when the sink reads a delivery.events.topic. At least once, in order per key (per message).',
      parameters: [
        SIGNATURE_PARAMETER,
        headerParameter('Omnibus-Event-Id', "The record's id (a delivery event's event_id): deduplicate on it."),
        headerParameter('Omnibus-Topic', "The record's topic."),
        headerParameter('Omnibus-Key', "The record's key, URI-encoded."),
        headerParameter('Omnibus-Attempt', '1 on the first attempt.'),
      ],
      requestBody: { required: true, content: { 'application/json': { schema: ref('DeliveryEvent') } } },
      responses: WEBHOOK_ANSWERS,
    },
  },
  deliveryEventBatch: {
    post: {
      summary: 'WebhookSink: several records per POST (webhook.batch.max.records above 1)',
      description: 'A JSON array of records, in order per key; the POST succeeds or is retried whole.',
      parameters: [SIGNATURE_PARAMETER, headerParameter('Omnibus-Batch', 'The number of records in the array.')],
      requestBody: { required: true, content: { 'application/json': { schema: arrayOf(ref('WebhookBatchItem')) } } },
      responses: WEBHOOK_ANSWERS,
    },
  },
};

/** The document; a fresh copy each call, so callers may change theirs. */
export function openApiDocument(): Record<string, unknown> {
  return structuredClone({
    openapi: '3.1.0',
    info: {
      title: 'Omnibus REST API',
      version: VERSION,
      description:
        "Kafka Connect's REST API (same paths, status codes and bodies), plus the bus's data plane and provider webhooks. " +
        'Every error is {error_code, message}. Unlike Kafka, no GET returns a secret in clear.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: 'http://127.0.0.1:8083' }],
    tags: [
      { name: 'connectors' },
      { name: 'tasks' },
      { name: 'offsets' },
      { name: 'plugins' },
      { name: 'admin' },
      { name: 'bus' },
      { name: 'templates', description: 'Versioned message templates, rendered at produce.' },
      { name: 'suppressions', description: 'Addresses that get no message on a channel (of a category, or at all): STOP, opt-outs, hard bounces, preferences.' },
      { name: 'internal', description: 'Between the workers of a cluster.' },
      { name: 'webhooks' },
      { name: 'worker' },
    ],
    // Applies only when rest.auth.bearer.tokens or rest.auth.basic.users is set.
    security: [{ bearerAuth: [] }, { basicAuth: [] }],
    paths: { ...connectorsPaths, ...dataPlanePaths, ...suppressionPaths, ...otherPaths, ...backlogPaths },
    webhooks: outgoingWebhooks,
    components: {
      schemas,
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'One of rest.auth.bearer.tokens.' },
        basicAuth: { type: 'http', scheme: 'basic', description: 'One of rest.auth.basic.users.' },
      },
    },
  });
}

export function openApiRoutes(): FastifyPluginAsync {
  const document = JSON.stringify(openApiDocument());
  return async (app) => {
    app.get('/openapi.json', async (_request, reply) => reply.type('application/json; charset=utf-8').send(document));
  };
}
