/**
 * Core's error registry, as Fastify's lib/errors.js: every error core throws on purpose has
 * its code here, with its HTTP status and its message template (`{name}` is filled from the
 * parameters the throw site gives). Layers throw `coreError(code, params)`; the REST layer
 * maps every thrown error through {@link toHttpError}, so a handler never builds an error body
 * by hand and an unexpected exception is the only thing that becomes a 500 of its own.
 *
 * packages/core/docs/errors.md is generated from this list (`pnpm docs`), and a test checks
 * that every code is used in the source and documented there, and that the page names no
 * code this list does not have.
 */
import { isConfigError, OmnibusError } from '@omnibus/sdk';

interface ErrorDefinition {
  /** The HTTP status the REST API answers with. */
  readonly status: number;
  /** The message, with `{name}` placeholders for the throw site's parameters. */
  readonly message: string;
  /** When it happens, for the errors page. */
  readonly description: string;
}

export const ERRORS = {
  // ---- requests ---------------------------------------------------------------------------
  OMNI_ERR_REQUEST_INVALID: { status: 400, message: '{problem}', description: 'A request body, path or query parameter of the wrong shape.' },

  // ---- connectors (control plane, herder) -------------------------------------------------
  OMNI_ERR_SECRET_RESEND_REQUIRED: {
    status: 400,
    message:
      'Re-send the secret: {keys} of connector {connector} cannot be kept as "[hidden]" because {changed} changed; ' +
      'a stored secret is never sent to another endpoint or class than the one it was stored for',
    description: 'A write that sends `[hidden]` back for a secret while changing the connector\'s class or an endpoint-like key (`*.url`, `*.host`, `*.port`, TLS settings…).',
  },
  OMNI_ERR_CONNECTOR_NAME_INVALID: {
    status: 400,
    message: 'Connector name must {rule}',
    description: 'A connector name that is empty, longer than 255 bytes, or holds a control character or a slash.',
  },
  OMNI_ERR_CONNECTOR_CONFIG_INVALID: {
    status: 400,
    message: '{problem}',
    description: "A connector config that fails validation (the message lists every error, as Kafka's does), or whose `name` is not the connector's.",
  },
  OMNI_ERR_CONNECTOR_CLASS_MISSING: {
    status: 400,
    message: '{problem}',
    description: 'A connector config without `connector.class`.',
  },
  OMNI_ERR_CONNECTOR_CLASS_UNKNOWN: {
    status: 400,
    message: '{problem}',
    description: 'A `connector.class` that names no installed plugin.',
  },
  OMNI_ERR_CONNECTOR_NOT_FOUND: { status: 404, message: '{problem}', description: 'A connector that does not exist.' },
  OMNI_ERR_CONNECTOR_EXISTS: { status: 409, message: 'Connector {connector} already exists', description: 'Creating a connector whose name is taken.' },
  OMNI_ERR_CONNECTOR_NOT_STOPPED: {
    status: 400,
    message:
      'Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified ' +
      "connector by issuing a 'PUT' request to the '/connectors/{connector}/stop' endpoint",
    description: 'Altering or resetting the offsets of a connector that is not STOPPED.',
  },
  OMNI_ERR_TASK_NOT_FOUND: { status: 404, message: 'Unknown task: {connector}-{task}', description: 'A task id the connector does not have.' },
  OMNI_ERR_TASK_STATUS_NOT_FOUND: {
    status: 404,
    message: 'No status found for task {connector}-{task}',
    description: 'The status of a task the connector does not have (or has not reported yet).',
  },
  OMNI_ERR_TASK_ID_INVALID: {
    status: 400,
    message: 'Invalid task id {id}: expected a non-negative integer',
    description: 'A task id in a path that is not a non-negative 32-bit integer.',
  },
  OMNI_ERR_OFFSETS_MISSING: {
    status: 400,
    message: 'Partitions / offsets need to be provided for an alter offsets request',
    description: 'An alter-offsets request without offsets.',
  },
  OMNI_ERR_OFFSETS_INVALID: {
    status: 400,
    message: '{problem}',
    description: 'An offset entry of the wrong shape, or naming a topic or shard the connector does not consume.',
  },
  OMNI_ERR_PLUGIN_NOT_FOUND: { status: 404, message: 'Unknown plugin {plugin}.', description: 'A connector plugin that is not installed.' },
  OMNI_ERR_TOPIC_TRACKING_DISABLED: {
    status: 403,
    message: 'Topic tracking is disabled.',
    description: '`GET /connectors/{name}/topics` or `PUT /connectors/{name}/topics/reset` on a worker with `topic.tracking.enable=false`.',
  },
  OMNI_ERR_TOPIC_TRACKING_RESET_DISABLED: {
    status: 403,
    message: 'Topic tracking reset is disabled.',
    description: '`PUT /connectors/{name}/topics/reset` on a worker with `topic.tracking.allow.reset=false`.',
  },
  OMNI_ERR_CONFIG_PROVIDER_UNRESOLVED: {
    status: 503,
    message: '{problem}',
    description: 'A `${provider:…}` placeholder that cannot be resolved now (a missing variable or file): retry once it is there.',
  },
  // /hooks faces the internet: its answers are constant, naming no connector setting, file or secret.
  OMNI_ERR_WEBHOOK_NOT_FOUND: {
    status: 404,
    message: 'No such connector, or it has no webhook',
    description: 'A webhook for a connector that does not exist or takes none.',
  },
  OMNI_ERR_WEBHOOK_UNAVAILABLE: {
    status: 503,
    message: 'The webhook cannot take calls now; try again later',
    description: "A webhook whose connector cannot be prepared now (e.g. its secret's placeholder cannot be resolved; the log says which).",
  },
  OMNI_ERR_WEBHOOK_TIMEOUT: {
    status: 503,
    message: 'The webhook did not answer in time; try again later',
    description: 'A webhook call that took longer than `rest.hooks.timeout.ms` to be handled.',
  },
  OMNI_ERR_WEBHOOK_FAILED: { status: 500, message: 'The webhook failed', description: "A connector's webhook handler threw (the log has the error)." },
  OMNI_ERR_JSON_TOO_DEEP: {
    status: 400,
    message: 'The JSON body is nested deeper than {max} levels',
    description: 'A JSON body nested deeper than `rest.json.max.depth`.',
  },

  // ---- records -----------------------------------------------------------------------------
  OMNI_ERR_TRANSFORM_FAILED: {
    status: 422,
    message: '{problem}',
    description:
      "A record a stage of the connector's `transforms` chain cannot transform. Not an HTTP answer: the record fails permanently for that " +
      'connector (dead-lettered when configured), and its delivery and events carry this code.',
  },

  // ---- loggers ----------------------------------------------------------------------------
  OMNI_ERR_LOGGER_NOT_FOUND: { status: 404, message: 'Logger {logger} not found.', description: 'A logger this worker does not have.' },
  OMNI_ERR_LOGGER_LEVEL_MISSING: {
    status: 400,
    message: "Desired 'level' parameter was not specified in request.",
    description: 'Setting a log level without `level`.',
  },
  OMNI_ERR_LOGGER_NAME_INVALID: {
    status: 400,
    message: "Invalid logger name: use at most {max} characters, dot-separated segments of letters, digits, '_', '$' and '-'.",
    description: 'Setting the level of a new logger whose name is too long or not a dotted name.',
  },
  OMNI_ERR_LOGGER_LIMIT: {
    status: 409,
    message: 'Too many loggers: at most {max} can be created through this API; set the level of an existing logger or of a namespace above it instead.',
    description: 'Setting the level of a new logger when the API has created as many as it may (each is kept for the worker\'s life).',
  },
  OMNI_ERR_LOGGER_LEVEL_INVALID: {
    status: 404,
    message: "invalid log level '{level}'.",
    description: 'A log level that is not a log4j level name (404, as Kafka answers it).',
  },

  // ---- the bus (data plane, runners) ------------------------------------------------------
  OMNI_ERR_BUS_TOPIC_NOT_FOUND: { status: 404, message: 'Topic {topic} not found', description: 'A topic that does not exist.' },
  OMNI_ERR_TOPIC_INVALID: { status: 400, message: '{problem}', description: 'A topic definition of the wrong shape (the body lists every problem).' },
  OMNI_ERR_TOPIC_EXISTS: { status: 409, message: 'Topic {topic} already exists', description: 'Creating a topic whose name is taken.' },
  OMNI_ERR_TOPIC_RESHARD_CONFLICT: {
    status: 409,
    message: "Topic {topic}'s shard count changed while this change was being made; read it again and retry",
    description: 'Raising a shard count that another request changed at the same moment.',
  },
  OMNI_ERR_BUS_MESSAGES_INVALID: {
    status: 422,
    message: '{failing} of {total} messages are invalid; none was accepted',
    description: 'A produce with invalid messages (the body lists each one\'s errors); nothing of the batch is stored.',
  },
  OMNI_ERR_BUS_BATCH_TOO_LARGE: {
    status: 413,
    message: 'A batch holds at most {limit}; got {actual}.',
    description: 'A produce with more messages, or more bytes of messages, than a batch may hold.',
  },
  OMNI_ERR_BUS_MESSAGE_NOT_FOUND: { status: 404, message: 'Message {id} not found', description: 'A message id the bus does not hold (never produced, or past its retention).' },
  OMNI_ERR_BUS_GROUP_NOT_FOUND: { status: 404, message: 'Group {group} has no messages', description: 'A message group with no message held.' },
  OMNI_ERR_BUS_WAKE_INVALID: { status: 400, message: '{problem}', description: "A peer's wake hint of the wrong shape." },
  OMNI_ERR_CONFIG_INVALID: {
    status: 400,
    message: '{key} must be {rule}; got {value}',
    description: 'A runtime setting of a connector the bus applies (e.g. `topic.creation.default.partitions`) that is out of range.',
  },

  // ---- stores -----------------------------------------------------------------------------
  OMNI_ERR_STORE_URL_INVALID: { status: 500, message: '{problem}', description: 'A store URL (`--store`, `store.url`) that cannot be used.' },
  OMNI_ERR_STORE_NOT_INITIALIZED: { status: 503, message: 'store {store} is not open: call init() first', description: 'A store used before it was opened.' },
  OMNI_ERR_STORE_SCHEMA_NEWER: {
    status: 500,
    message: '{store} holds schema version {found}, newer than this Omnibus understands ({supported}); upgrade Omnibus',
    description: 'A store written by a newer Omnibus.',
  },
  OMNI_ERR_STORE_MIGRATION_TIMEOUT: {
    status: 503,
    message: 'schema migration {version} of {keyspace} did not finish within {seconds} s',
    description: 'A CQL schema migration another worker claimed and did not finish in time.',
  },
  OMNI_ERR_STORE_TOPIC_UNKNOWN: {
    status: 500,
    message: 'topic "{topic}" does not exist; create it before appending messages to it',
    description: 'Messages written to a topic the store does not have (the bus checks first: a topic deleted meanwhile).',
  },
  OMNI_ERR_STORE_MESSAGE_INVALID: {
    status: 500,
    message: '{problem}',
    description: 'Messages the store refuses (a shard outside the topic, a bad timestamp, an id twice): the bus checks first, so this is a bug.',
  },
  OMNI_ERR_STORE_UNAVAILABLE: {
    status: 503,
    message: 'the store cannot serve this now ({reason}); nothing was acknowledged: retry after {seconds} s',
    description:
      'The CQL cluster could not reach the consistency level (nodes down or too slow, none reachable). The answer carries ' +
      '`Retry-After`; a produce that gets it was not acknowledged and should be retried (with the same ids, where the producer chose them).',
  },
  OMNI_ERR_STORE_CONTENDED: {
    status: 409,
    message: 'connector {connector} kept changing under us; its config was not written',
    description: 'A connector update that lost every compare-and-set round to other writers.',
  },

  // ---- templates ----------------------------------------------------------------------------
  OMNI_ERR_TEMPLATE_INVALID: {
    status: 400,
    message: 'Invalid value for {key}: {problem}',
    description: 'A template (or a new version of one) whose name, channel, locales or parts are of the wrong shape, or whose text fails to parse; nothing is stored.',
  },
  OMNI_ERR_TEMPLATE_NOT_FOUND: { status: 404, message: 'Template {template} not found', description: 'A template name no template has (REST, or a produce naming it).' },
  OMNI_ERR_TEMPLATE_VERSION_NOT_FOUND: {
    status: 404,
    message: 'Template {template} has no version {version}',
    description: 'A version number the template does not have (REST, a produce pinning it, or making it live).',
  },
  OMNI_ERR_TEMPLATE_EXISTS: { status: 409, message: 'Template {template} already exists', description: 'Creating a template whose name is taken (add a version instead).' },
  OMNI_ERR_TEMPLATE_CONTENDED: {
    status: 409,
    message: 'template {template} kept changing under us; nothing was written',
    description: 'A new version or live change that lost every compare-and-set round to other writers.',
  },
  OMNI_ERR_TEMPLATE_VARIABLES_INVALID: {
    status: 400,
    message: 'Invalid value for {key}: {problem}',
    description: 'Template variables that are not a JSON object, or a template reference (`value.template`) of the wrong shape.',
  },
  OMNI_ERR_TEMPLATE_VARIABLE_MISSING: {
    status: 400,
    message: 'Template {template} version {version} ({locale}) needs variable {variable}, which {key} does not give',
    description: 'Rendering a template without a variable it uses: the message is refused (never sent with an empty string in its place).',
  },
  OMNI_ERR_TEMPLATE_RENDER_FAILED: {
    status: 400,
    message: 'Template {template} version {version} ({locale}) failed to render {part}: {problem}',
    description: 'Rendering that failed otherwise: a render, memory or time limit reached, or a filter failing on its input.',
  },

  // ---- suppression list ----------------------------------------------------------------------
  OMNI_ERR_SUPPRESSION_INVALID: {
    status: 400,
    message: 'Invalid value for {field}: {problem}',
    description: 'A suppression entry (or a look-up) whose address cannot be read for its channel, or whose channel, category or other field is of the wrong shape; nothing is stored.',
  },
  OMNI_ERR_SUPPRESSION_NOT_FOUND: {
    status: 404,
    message: 'No suppression for {address} on {channel}{category}',
    description: 'Looking up or removing a suppression the list does not hold.',
  },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERRORS;

/** The `{name}` placeholders of a template. */
type Placeholders<T extends string> = T extends `${string}{${infer Name}}${infer Rest}` ? Name | Placeholders<Rest> : never;
/** What a throw site gives for `code`'s template. */
export type ErrorParams<C extends ErrorCode> = { [Name in Placeholders<(typeof ERRORS)[C]['message']>]: string | number };

export class CoreError extends OmnibusError {
  declare readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields for the JSON body (e.g. per-item errors of a rejected batch). */
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message);
    this.status = ERRORS[code].status;
    this.details = details;
  }
}

/** The registry's error `code`, its message filled from `params`. */
export function coreError<C extends ErrorCode>(code: C, params: ErrorParams<C>, details?: Record<string, unknown>): CoreError {
  const values = params as Record<string, string | number>;
  const message = ERRORS[code].message.replace(/\{(\w+)\}/g, (placeholder, name: string) => (name in values ? String(values[name]) : placeholder));
  return new CoreError(code, message, details);
}

/** The body every non-2xx response carries, as Kafka Connect's ErrorMessage. */
export interface ErrorBody {
  error_code: number;
  message: string;
  [extra: string]: unknown;
}

export function toHttpError(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof CoreError) {
    return { status: error.status, body: { error_code: error.status, message: error.message, ...error.details } };
  }
  if (isConfigError(error)) {
    return { status: 400, body: { error_code: 400, message: error.message, errors: error.errors } };
  }
  // An error of the registry's from elsewhere in the process (e.g. UnresolvedConfigError): its code gives its status.
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof OmnibusError && typeof code === 'string' && code in ERRORS) {
    const status = ERRORS[code as ErrorCode].status;
    return { status, body: { error_code: status, message: error.message } };
  }
  // Fastify's own errors (bad JSON, body too large, unsupported media type) carry a statusCode.
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: { error_code: status, message: (error as Error).message } };
  }
  return { status: 500, body: { error_code: 500, message: error instanceof Error ? error.message : String(error) } };
}
