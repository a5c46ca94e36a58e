/**
 * The worker's own settings (Kafka's worker.properties): from CLI flags, a JSON file
 * (`--config worker.json`, Kafka-style dotted keys) and OMNIBUS_* environment variables,
 * in increasing precedence: file < env < flags.
 */
import { readFileSync } from 'node:fs';
import { ConfigSpec, validators } from '@omnibus/sdk';
import { workerGroupNames } from '../bus/connector-config.ts';

const CORS_METHOD = '(?:GET|HEAD|POST|PUT|PATCH|DELETE)';
const CORS_METHOD_LIST = new RegExp(`^\\s*(?:${CORS_METHOD}(?:\\s*,\\s*${CORS_METHOD})*)?\\s*$`, 'i');

export const workerConfigSpec = ConfigSpec.builder()
  .string('store', {
    documentation: 'Where the bus and the control plane live: lmdb:<dir> (embedded) or cql://host1,host2:9042/keyspace?dc=<datacenter>[&replication=3&consistency=LOCAL_QUORUM&serial=LOCAL_SERIAL] (see store-url.md).',
    default: 'lmdb:.omnibus/data',
    importance: 'HIGH',
  })
  .list('listeners', {
    documentation: 'REST listeners, e.g. http://127.0.0.1:8083 (port 0 picks a free port).',
    default: ['http://127.0.0.1:8083'],
    importance: 'HIGH',
  })
  .string('rest.advertised.url', {
    documentation: 'The URL other workers and operators reach this worker at; defaults to the first listener.',
    optional: true,
    importance: 'LOW',
  })
  .list('plugin.path', {
    documentation: 'Directories of npm packages holding connectors (each package declares them in its package.json "omnibus" field).',
    default: [],
    importance: 'MEDIUM',
  })
  .list('config.providers.file.allowed.paths', {
    documentation:
      'Directories whose files ${file:path:key} placeholders may read (after resolving .. and symlinks, the file must lie under one of them). ' +
      'Empty: every ${file:} placeholder is refused. Never list the directory of the worker config file or of the store.',
    default: [],
    importance: 'HIGH',
  })
  .list('config.providers.env.allowed.names', {
    documentation:
      'Environment variables ${env:NAME} placeholders may read: exact names, or prefixes ending in * (e.g. OMNIBUS_SECRET_*). ' +
      'Empty: every ${env:} placeholder is refused.',
    default: [],
    importance: 'HIGH',
  })
  .password('rest.auth.bearer.tokens', {
    documentation: 'Comma-separated bearer tokens accepted on the control plane; empty disables bearer auth.',
    default: '',
    importance: 'HIGH',
  })
  .password('rest.auth.basic.users', {
    documentation: 'Comma-separated user:password pairs accepted with HTTP basic auth on the control plane; empty disables it.',
    default: '',
    importance: 'HIGH',
  })
  .int('rest.body.limit.bytes', {
    documentation: 'Largest accepted request body; larger ones get 413.',
    default: 8 * 1024 * 1024,
    validator: validators.range(1024, 256 * 1024 * 1024),
  })
  // ---- HTTP surface: listeners, Host and Origin checks, webhooks ----
  .list('rest.allowed.hosts', {
    documentation:
      'Host names accepted in the Host header besides localhost names, loopback addresses, the listener\'s own address and the ' +
      'advertised URL\'s host. Loopback listeners always check Host (other names get 421, which defeats DNS rebinding); ' +
      'on other listeners Host is checked only when this is set.',
    default: [],
    importance: 'MEDIUM',
  })
  .list('rest.cors.allowed.origins', {
    documentation:
      'Origins (scheme://host[:port]) whose web pages may call the REST API: they get CORS headers and may send state-changing ' +
      'requests. Empty (the default) means CORS is off and every cross-origin POST, PUT, PATCH or DELETE is refused (403). ' +
      '"*" allows every origin except "null" (not recommended: it turns the cross-site request check off).',
    default: [],
    importance: 'MEDIUM',
  })
  // Kafka Connect's own CORS keys, so that a Kafka Connect UI pointed at a worker works as it does against Kafka.
  .string('access.control.allow.origin', {
    documentation:
      'Kafka Connect\'s CORS setting: origins (comma-separated scheme://host[:port], or "*") whose web pages may call the REST ' +
      'API, added to rest.cors.allowed.origins. Empty (the default): none.',
    default: '',
    importance: 'LOW',
  })
  .string('access.control.allow.methods', {
    documentation:
      'Kafka Connect\'s CORS setting: the methods (comma-separated) cross-origin pages may use, in Access-Control-Allow-Methods ' +
      'and for their state-changing requests. Empty: GET, POST and HEAD (Kafka\'s default) when only access.control.allow.origin ' +
      'names origins, every method of the API when rest.cors.allowed.origins does.',
    default: '',
    importance: 'LOW',
    validator: validators.pattern(CORS_METHOD_LIST, 'a comma-separated list of GET, HEAD, POST, PUT, PATCH, DELETE'),
  })
  .boolean('rest.auth.none', {
    documentation:
      'Serve a listener that is not on a loopback address (0.0.0.0, a public or LAN address, a host name) without rest.auth.*. ' +
      'Without this, such a worker refuses to start.',
    default: false,
    importance: 'HIGH',
  })
  .string('listeners.https.ssl.key.location', {
    documentation: 'PEM file of the private key https:// listeners serve with (required when a listener is https://).',
    optional: true,
    importance: 'HIGH',
  })
  .string('listeners.https.ssl.certificate.location', {
    documentation: 'PEM file of the certificate chain https:// listeners serve (required when a listener is https://).',
    optional: true,
    importance: 'HIGH',
  })
  .password('listeners.https.ssl.key.password', {
    documentation: 'Passphrase of an encrypted private key; empty when the key is not encrypted.',
    default: '',
    importance: 'MEDIUM',
  })
  .int('rest.request.timeout.ms', {
    documentation: 'Longest time a client may take to send a whole request (headers and body); slower ones get 408 and are disconnected.',
    default: 30_000,
    validator: validators.range(1000, 600_000),
  })
  .int('rest.json.max.depth', {
    documentation: 'Deepest nesting of arrays and objects accepted in a JSON request body; deeper ones get 400.',
    default: 64,
    validator: validators.range(8, 1000),
  })
  .int('rest.hooks.body.limit.bytes', {
    documentation: 'Largest accepted body on /hooks/* (provider webhooks, the internet-facing routes); larger ones get 413.',
    default: 256 * 1024,
    validator: validators.range(1024, 64 * 1024 * 1024),
  })
  .int('rest.hooks.timeout.ms', {
    documentation: 'Longest a /hooks/* request may take, reading the body and handling included; beyond it the provider gets 503.',
    default: 10_000,
    validator: validators.range(100, 600_000),
  })
  .int('lease.ttl.ms', {
    documentation:
      "How long a worker's membership, and a shard lease, last without renewal: a dead worker's tasks move about this long " +
      '(plus one heartbeat) after its last heartbeat. Kafka\'s session.timeout.ms.',
    default: 10_000,
    validator: validators.range(1000, 600_000),
  })
  .int('heartbeat.interval.ms', {
    documentation:
      'How often a worker renews its membership (which keeps its task leases) and reads the cluster view: the live members, ' +
      'and whether any connector changed (config, pause, resume, restart, delete), which it then re-reads. ' +
      'At most lease.ttl.ms / 3 is used, so that two missed heartbeats never cost the membership.',
    default: 3_000,
    validator: validators.range(100, 60_000),
  })
  .list('worker.groups', {
    documentation:
      'Worker groups this worker belongs to (comma-separated, e.g. sms): it runs the tasks of connectors whose worker.groups names one of them, ' +
      'and of connectors that name none. Empty (default): only the latter.',
    default: [],
    importance: 'MEDIUM',
    validator: workerGroupNames,
  })
  .boolean('topic.tracking.enable', {
    documentation:
      'Record the topics each connector uses (a sink those it reads records from, a source those it produces to), shown by ' +
      'GET /connectors/{name}/topics. When false, that route and PUT /connectors/{name}/topics/reset answer 403. Kafka\'s setting of the same name.',
    default: true,
    importance: 'LOW',
  })
  .boolean('topic.tracking.allow.reset', {
    documentation: 'Allow PUT /connectors/{name}/topics/reset to forget a connector\'s active topics; when false it answers 403. Kafka\'s setting of the same name.',
    default: true,
    importance: 'LOW',
  })
  .string('log.level', { documentation: 'pino log level.', default: 'info', validator: validators.oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent') });

export type WorkerConfig = ReturnType<typeof workerConfigSpec.parse>;

/** The heartbeat interval in effect: the configured one, within a third of the lease TTL. */
export function heartbeatIntervalMs(config: Pick<WorkerConfig, 'heartbeat.interval.ms' | 'lease.ttl.ms'>): number {
  return Math.min(config['heartbeat.interval.ms'], Math.floor(config['lease.ttl.ms'] / 3));
}

const ENV_PREFIX = 'OMNIBUS_';

/** OMNIBUS_LEASE_TTL_MS → lease.ttl.ms; only keys the spec declares are taken. */
function fromEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of workerConfigSpec.keys) {
    const name = ENV_PREFIX + key.name.toUpperCase().replace(/[.-]/g, '_');
    const value = env[name];
    if (value !== undefined) out[key.name] = value;
  }
  return out;
}

export function loadWorkerConfig(
  flags: Record<string, unknown>,
  options: { file?: string; env?: NodeJS.ProcessEnv } = {},
): WorkerConfig {
  const fromFile = options.file ? (JSON.parse(readFileSync(options.file, 'utf8')) as Record<string, unknown>) : {};
  const definedFlags = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return workerConfigSpec.parse({ ...fromFile, ...fromEnv(options.env ?? process.env), ...definedFlags });
}
