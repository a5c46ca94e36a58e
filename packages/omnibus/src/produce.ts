/**
 * `omnibus messages produce <topic>` and `omnibus messages show <id>`: produce one message from
 * flags (or many from a file) to a running worker's data plane, and read back what became of
 * a message. The server checks every field (a 422 names each one it refuses); the CLI checks
 * only what it must parse itself (JSON given on the command line, the quiet-hours shorthand).
 * Exit codes as for `connectors`.
 */
import type { Command } from 'commander';
import type { RestClient } from './client.ts';
import { clientAction, expectOk, parseJson, readInput, table, UsageError, type CliIo, type ExitState } from './connectors.ts';

/** Most messages one produce request may carry (the data plane's limit: 413 beyond). */
export const PRODUCE_MAX_MESSAGES = 1000;

interface ProduceFlags {
  value?: string;
  valueFile?: string;
  key?: string;
  id?: string;
  group?: string;
  priority?: string;
  sendAt?: string;
  expiresAt?: string;
  quietHours?: string;
  fallback?: string;
  category?: string;
  header?: string[];
  file?: string;
  batchSize: string;
  json?: boolean;
}

interface Acknowledged {
  id: string;
  shard: number;
  send_at?: number;
}

interface MessageBody {
  message: {
    id: string;
    topic: string;
    key: string;
    shard: number;
    value: unknown;
    headers: Record<string, string>;
    group?: string;
    priority?: string;
    created_at: number;
  };
  state?: string;
  send_at?: number;
  scheduled_by?: string;
  fallback_id?: string;
  fallback_of?: string;
  template?: unknown;
  deliveries: Array<{ connector: string; state: string; attempts: number; provider_id?: string; last_error?: unknown; next_attempt_at?: number; updated_at: number }>;
  events: Array<{ at: number; type: string; connector?: string; worker_id?: string; detail?: Record<string, unknown> }>;
}

/** Flags that describe one message: they cannot be combined with --file, whose items carry their own. */
const ITEM_FLAGS: Array<[keyof ProduceFlags, string]> = [
  ['value', '--value'],
  ['valueFile', '--value-file'],
  ['key', '--key'],
  ['id', '--id'],
  ['priority', '--priority'],
  ['sendAt', '--send-at'],
  ['expiresAt', '--expires-at'],
  ['quietHours', '--quiet-hours'],
  ['fallback', '--fallback'],
  ['category', '--category'],
];

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export function registerProduceCommands(messages: Command, io: CliIo, exit: ExitState): void {
  const action = clientAction(io, exit);

  messages
    .command('produce <topic>')
    .description('produce one message from flags, or many from --file (a JSON array or NDJSON of produce items)')
    .option('--value <json>', 'the message value, as JSON (a bare word is not JSON: quote strings, \'"hi"\')')
    .option('--value-file <path>', 'read the value (JSON) from a file, or - for standard input')
    .option('--key <key>', 'the routing key (a recipient: the same key keeps its order)')
    .option('--id <id>', 'your id for the message: producing it again stores nothing twice')
    .option('--group <group>', 'a group (campaign, batch) to count and cancel it by; with --file, for the items that name none')
    .option('--priority <priority>', 'high, normal (default) or low')
    .option('--send-at <time>', 'hold the message until then: RFC 3339 with a zone, or ms since the epoch')
    .option('--expires-at <time>', 'never hand the message off after then: RFC 3339 with a zone, or ms since the epoch')
    .option('--quiet-hours <window>', "start-end@Zone, e.g. 21:00-08:00@Europe/Paris (the recipient's zone), or off to ignore the topic's")
    .option('--fallback <json>', 'a message for another channel if this one is not delivered in time: {"topic","value","key"?,"after_ms"|"deadline","unless"?,"connector"?}')
    .option('--category <category>', 'the message category (e.g. marketing), checked against the suppression list')
    .option('--header <name=value>', 'a message header (repeatable)', collect)
    .option('-f, --file <path>', 'produce items from a file (a JSON array, or one JSON object a line), or - for standard input')
    .option('--batch-size <n>', `items per request with --file (1 to ${PRODUCE_MAX_MESSAGES})`, String(PRODUCE_MAX_MESSAGES))
    .option('--json', "print the server's answer as JSON")
    .action(
      action(async (client, topic: string, flags: ProduceFlags) => {
        const group = flags.group;
        const batches = flags.file !== undefined ? fileBatches(flags, io) : [[singleItem(flags, io)]];
        const acknowledged = await produceBatches(client, topic, batches, group);
        if (flags.json) {
          io.out(`${JSON.stringify({ messages: acknowledged })}\n`);
          return;
        }
        const held = acknowledged.filter((m) => m.send_at !== undefined).length;
        const rows = acknowledged.map((m) => [m.id, String(m.shard), m.send_at !== undefined ? isoTime(m.send_at) : '-']);
        io.out(
          `${acknowledged.length} ${acknowledged.length === 1 ? 'message' : 'messages'} acknowledged on ${topic}` +
            `${held > 0 ? ` (${held} held until their send time)` : ''}:\n${table(['ID', 'SHARD', 'SEND AT'], rows)}`,
        );
      }),
    );

  messages
    .command('show <id>')
    .description('a message: its priority, its send time while held, its fallback, its state per connector and its events')
    .option('--json', "print the server's answer as JSON")
    .action(
      action(async (client, id: string, flags: { json?: boolean }) => {
        const body = expectOk(await client.call('GET', `/messages/${encodeURIComponent(id)}`)) as MessageBody;
        io.out(flags.json ? `${JSON.stringify(body)}\n` : formatMessage(body));
      }),
    );
}

/** Sends the batches in order; a refused batch stops the run, naming the items of the file it refused. */
async function produceBatches(client: RestClient, topic: string, batches: unknown[][], group: string | undefined): Promise<Acknowledged[]> {
  const acknowledged: Acknowledged[] = [];
  const path = `/topics/${encodeURIComponent(topic)}/messages`;
  let offset = 0;
  for (const messages of batches) {
    const result = await client.call('POST', path, { messages, ...(group !== undefined ? { group } : {}) });
    if (!result.ok && acknowledged.length > 0) {
      // The earlier requests are stored: say so, or a rerun would seem to be the only way to know.
      result.message = `${result.message}; items 0 to ${offset - 1} were acknowledged (producing them again with the same ids stores nothing twice)`;
    }
    const body = expectOk(result, offset) as { messages: Acknowledged[] };
    acknowledged.push(...body.messages);
    offset += messages.length;
  }
  return acknowledged;
}

function singleItem(flags: ProduceFlags, io: CliIo): Record<string, unknown> {
  if (flags.value !== undefined && flags.valueFile !== undefined) throw new UsageError('give --value or --value-file, not both');
  if (flags.value === undefined && flags.valueFile === undefined) throw new UsageError('give the message value with --value <json> or --value-file <path> (or many messages with --file)');
  const value = flags.value !== undefined ? parseJson(flags.value, '--value') : parseJson(readInput(flags.valueFile!, io), `--value-file ${flags.valueFile}`);
  const headers: Record<string, string> = {};
  for (const header of flags.header ?? []) {
    const at = header.indexOf('=');
    if (at <= 0) throw new UsageError(`--header ${header}: expected name=value`);
    headers[header.slice(0, at)] = header.slice(at + 1);
  }
  return {
    ...(flags.key !== undefined ? { key: flags.key } : {}),
    value,
    ...(flags.id !== undefined ? { id: flags.id } : {}),
    ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
    ...(flags.sendAt !== undefined ? { send_at: instant(flags.sendAt) } : {}),
    ...(flags.expiresAt !== undefined ? { expires_at: instant(flags.expiresAt) } : {}),
    ...(flags.quietHours !== undefined ? { quiet_hours: quietHours(flags.quietHours) } : {}),
    ...(flags.fallback !== undefined ? { fallback: parseJson(flags.fallback, '--fallback') } : {}),
    ...(flags.category !== undefined ? { category: flags.category } : {}),
    ...(flags.header !== undefined ? { headers } : {}),
  };
}

/** The file's items in requests of at most --batch-size. */
function fileBatches(flags: ProduceFlags, io: CliIo): unknown[][] {
  const single = ITEM_FLAGS.filter(([name]) => flags[name] !== undefined).map(([, flag]) => flag);
  if (flags.header !== undefined) single.push('--header');
  if (single.length > 0) throw new UsageError(`--file takes whole produce items; ${single.join(', ')} describe one message: put them in the items`);
  const size = Number(flags.batchSize);
  if (!Number.isInteger(size) || size < 1 || size > PRODUCE_MAX_MESSAGES) throw new UsageError(`--batch-size must be an integer from 1 to ${PRODUCE_MAX_MESSAGES}`);
  const items = parseItems(readInput(flags.file!, io), flags.file!);
  if (items.length === 0) throw new UsageError(`${flags.file} holds no produce item`);
  const batches: unknown[][] = [];
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size));
  return batches;
}

/** A JSON array of items, or NDJSON: one item a line (blank lines skipped). */
function parseItems(text: string, file: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    const parsed = parseJson(trimmed, file);
    if (!Array.isArray(parsed)) throw new UsageError(`${file} must hold a JSON array or one JSON object a line`);
    return parsed;
  }
  const items: unknown[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() !== '') items.push(parseJson(line, `${file} line ${i + 1}`));
  });
  return items;
}

/** Digits are ms since the epoch; anything else goes to the server as text (RFC 3339, which it checks). */
const instant = (text: string): string | number => (/^\d+$/.test(text) ? Number(text) : text);

/** `start-end@Zone` (the server checks the times and the zone), or `off`: the topic's quiet hours do not apply. */
function quietHours(text: string): false | { start: string; end: string; time_zone: string } {
  if (text === 'off') return false;
  const match = /^([^-@\s]+)-([^-@\s]+)@(\S+)$/.exec(text);
  if (!match) throw new UsageError(`--quiet-hours ${text}: expected start-end@Zone (e.g. 21:00-08:00@Europe/Paris) or off`);
  return { start: match[1]!, end: match[2]!, time_zone: match[3]! };
}

const isoTime = (ms: number) => new Date(ms).toISOString();

function formatMessage(body: MessageBody): string {
  const m = body.message;
  const fields: Array<[string, string | undefined]> = [
    ['topic', m.topic],
    ['key', m.key],
    ['shard', String(m.shard)],
    ['priority', m.priority],
    ['group', m.group],
    ['created', isoTime(m.created_at)],
    ['state', body.state !== undefined ? `${body.state}${body.send_at !== undefined ? ` until ${isoTime(body.send_at)}` : ''}${body.scheduled_by ? ` (${body.scheduled_by})` : ''}` : undefined],
    ['fallback', body.fallback_id],
    ['fallback of', body.fallback_of],
    ['headers', Object.keys(m.headers).length > 0 ? Object.entries(m.headers).map(([k, v]) => `${k}=${v}`).join(', ') : undefined],
    ['value', JSON.stringify(m.value)],
  ];
  const width = Math.max(...fields.map(([name]) => name.length));
  const lines = [`message ${m.id}`, ...fields.filter(([, v]) => v !== undefined).map(([name, v]) => `  ${name.padEnd(width)}  ${v}`)];
  let text = `${lines.join('\n')}\n`;
  if (body.deliveries.length > 0) {
    const rows = [...body.deliveries]
      .sort((a, b) => a.connector.localeCompare(b.connector))
      .map((d) => [d.connector, d.state, String(d.attempts), d.provider_id ?? '-', isoTime(d.updated_at)]);
    text += `\n${table(['CONNECTOR', 'STATE', 'ATTEMPTS', 'PROVIDER ID', 'UPDATED'], rows)}`;
  } else if (body.state === undefined) {
    text += '\nno sink connector has read it yet\n';
  }
  if (body.events.length > 0) {
    const rows = body.events.map((e) => [isoTime(e.at), e.type, e.connector ?? '-', e.detail ? JSON.stringify(e.detail) : '']);
    text += `\n${table(['AT', 'EVENT', 'CONNECTOR', 'DETAIL'], rows)}`;
  }
  return text;
}
