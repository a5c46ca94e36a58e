/**
 * `omnibus connectors …`: the operator's verbs against a running worker, the few curl calls
 * everyone ends up scripting. Exit codes: 0 done, 1 the server refused (its message is
 * printed), 2 the command line or the input file is wrong, 3 the worker cannot be reached.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_URL, RestClient, UnreachableError, type CallResult } from './client.ts';

export const EXIT = { ok: 0, server: 1, usage: 2, unreachable: 3 } as const;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Reads `-f -`. */
  stdin(): string;
}

/** A usage problem found after parsing (unreadable file, missing name): exit code 2. */
export class UsageError extends Error {}

/** Set by a command's action; the entry point exits with it. */
export interface ExitState {
  code: number;
}

interface ConnectionOptions {
  url?: string;
  token?: string;
}

interface StateInfo {
  state: string;
  worker_id: string;
  trace?: string;
}
interface StatusBody {
  name: string;
  connector: StateInfo;
  tasks: Array<StateInfo & { id: number }>;
  type: string;
}
interface InfoBody {
  name: string;
  config: Record<string, string>;
  tasks: unknown[];
  type: string;
}

/** The options every client verb takes (on its parent command). */
export function withConnectionOptions(command: Command): Command {
  return command
    .option('--url <url>', `worker REST URL (env OMNIBUS_URL; default ${DEFAULT_URL})`)
    .option('--token <token>', 'bearer token, when the worker requires one (env OMNIBUS_TOKEN)');
}

/** A command whose verbs talk to a running worker: it takes the worker's URL and token. */
export function clientCommand(program: Command, name: string, description: string): Command {
  return withConnectionOptions(program.command(name).description(description));
}

/** Wraps a client verb: runs `work` with a client, mapping what can go wrong to an exit code. */
export function clientAction(io: CliIo, exit: ExitState) {
  return <A extends unknown[]>(work: (client: RestClient, ...args: A) => Promise<void>) =>
    async (...args: A) => {
      const command = args[args.length - 1] as Command;
      const options = command.optsWithGlobals<ConnectionOptions>();
      try {
        const client = new RestClient({
          url: options.url ?? io.env.OMNIBUS_URL ?? DEFAULT_URL,
          token: options.token ?? io.env.OMNIBUS_TOKEN,
        });
        await work(client, ...args);
      } catch (error) {
        if (error instanceof UnreachableError) {
          io.err(`omnibus: ${error.message}\n`);
          exit.code = EXIT.unreachable;
        } else if (error instanceof UsageError) {
          io.err(`omnibus: ${error.message}\n`);
          exit.code = EXIT.usage;
        } else if (error instanceof ServerError) {
          io.err(`omnibus: ${error.message}\n`);
          exit.code = EXIT.server;
        } else {
          throw error;
        }
      }
    };
}

export function registerConnectorsCommand(program: Command, io: CliIo, exit: ExitState): void {
  const connectors = clientCommand(program, 'connectors', "manage the connectors of a running worker (Kafka Connect's REST API)");
  const action = clientAction(io, exit);

  connectors
    .command('list')
    .description('list connectors with their type, class, state and tasks')
    .action(
      action(async (client) => {
        const body = expectOk(await client.call('GET', '/connectors?expand=status&expand=info')) as Record<
          string,
          { status?: StatusBody; info?: InfoBody }
        >;
        const names = Object.keys(body).sort();
        if (names.length === 0) {
          io.out('no connectors\n');
          return;
        }
        const rows = names.map((name) => {
          const { status, info } = body[name] ?? {};
          const tasks = status?.tasks ?? [];
          const running = tasks.filter((t) => t.state === 'RUNNING').length;
          return [name, info?.type ?? status?.type ?? '', info?.config['connector.class'] ?? '', status?.connector.state ?? '', `${running}/${tasks.length}`];
        });
        io.out(table(['NAME', 'TYPE', 'CLASS', 'STATE', 'TASKS RUNNING'], rows));
      }),
    );

  connectors
    .command('apply')
    .description('create or update a connector from a JSON file: {"name", "config"} or a flat config with "name"')
    .requiredOption('-f, --file <file>', 'the connector file, or - for standard input')
    .action(
      action(async (client, options: { file: string }) => {
        const { name, config } = readConnectorFile(options.file, io);
        const result = await client.call('PUT', `/connectors/${encodeURIComponent(name)}/config`, config);
        expectOk(result);
        io.out(`connector ${name} ${result.status === 201 ? 'created' : 'updated'}\n`);
      }),
    );

  connectors
    .command('status <connector>')
    .description('show the state of a connector and of each of its tasks')
    .action(
      action(async (client, name: string) => {
        const status = expectOk(await client.call('GET', `/connectors/${encodeURIComponent(name)}/status`)) as StatusBody;
        io.out(formatStatus(status));
      }),
    );

  for (const [verb, path, done] of [
    ['pause', 'pause', 'pause requested'],
    ['resume', 'resume', 'resume requested'],
    ['stop', 'stop', 'stop requested'],
  ] as const) {
    connectors
      .command(`${verb} <connector>`)
      .description(`${verb} a connector (its tasks follow once the workers apply it)`)
      .action(
        action(async (client, name: string) => {
          expectOk(await client.call('PUT', `/connectors/${encodeURIComponent(name)}/${path}`));
          io.out(`connector ${name}: ${done}\n`);
        }),
      );
  }

  connectors
    .command('restart <connector>')
    .description('restart a connector, and optionally its tasks')
    .option('--include-tasks', 'restart the tasks too', false)
    .option('--only-failed', 'restart only the instances that failed', false)
    .action(
      action(async (client, name: string, options: { includeTasks: boolean; onlyFailed: boolean }) => {
        const query = `includeTasks=${options.includeTasks}&onlyFailed=${options.onlyFailed}`;
        const body = expectOk(await client.call('POST', `/connectors/${encodeURIComponent(name)}/restart?${query}`));
        io.out(`connector ${name}: restart requested\n`);
        if (body && typeof body === 'object') io.out(formatStatus(body as StatusBody));
      }),
    );

  connectors
    .command('delete <connector>')
    .description('delete a connector and stop its tasks')
    .action(
      action(async (client, name: string) => {
        expectOk(await client.call('DELETE', `/connectors/${encodeURIComponent(name)}`));
        io.out(`connector ${name} deleted\n`);
      }),
    );
}

/** The server refused the call: exit code 1. */
export class ServerError extends Error {}

/**
 * The body's answer, or a ServerError with the server's message and, when the body lists them,
 * the fields it refused (a produce's `[{index, field, message}]`, a config's `{field: message}`).
 * `indexOffset` shifts a produce's item indexes, for a request that carried a slice of a file.
 */
export function expectOk(result: CallResult, indexOffset = 0): unknown {
  if (!result.ok) {
    const details = fieldErrors(result.body, indexOffset).map((line) => `\n  ${line}`).join('');
    throw new ServerError(`${result.message} (HTTP ${result.status})${details}`);
  }
  return result.body;
}

function fieldErrors(body: unknown, indexOffset: number): string[] {
  const errors = body && typeof body === 'object' ? (body as { errors?: unknown }).errors : undefined;
  if (Array.isArray(errors)) {
    return errors.flatMap((e: { index?: unknown; field?: unknown; message?: unknown }) => {
      if (!e || typeof e !== 'object' || typeof e.message !== 'string') return [];
      const where = typeof e.index === 'number' ? `item ${e.index + indexOffset}: ` : '';
      return [`${where}${typeof e.field === 'string' && e.field !== '' ? `${e.field} ` : ''}${e.message}`];
    });
  }
  if (errors && typeof errors === 'object') {
    return Object.entries(errors).flatMap(([field, message]) => (typeof message === 'string' ? [`${field} ${message}`] : []));
  }
  return [];
}

/** A file's text, or standard input's for `-`; a file that cannot be read is the command line's fault. */
export function readInput(path: string, io: CliIo): string {
  try {
    return path === '-' ? io.stdin() : readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** JSON given on the command line or in a file; `where` names it in the error. */
export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where} is not JSON: ${(error as Error).message}`);
  }
}

function readConnectorFile(file: string, io: CliIo): { name: string; config: Record<string, unknown> } {
  const parsed = parseJson(readInput(file, io), file);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`${file} must hold a JSON object`);
  const object = parsed as Record<string, unknown>;
  // The two shapes Kafka's standalone mode reads: POST /connectors' body, or the config itself.
  const nested = object.config !== undefined;
  if (nested && (!object.config || typeof object.config !== 'object' || Array.isArray(object.config))) {
    throw new UsageError(`"config" in ${file} must be a JSON object`);
  }
  const config = (nested ? object.config : object) as Record<string, unknown>;
  const name = nested ? (object.name ?? config.name) : config.name;
  if (typeof name !== 'string' || name.trim() === '') throw new UsageError(`${file} does not name the connector ("name")`);
  return { name: name.trim(), config };
}

function formatStatus(status: StatusBody): string {
  const head = `connector ${status.name} (${status.type}): ${status.connector.state} on ${status.connector.worker_id || '-'}\n`;
  const trace = status.connector.trace ? `  ${firstLine(status.connector.trace)}\n` : '';
  if (status.tasks.length === 0) return `${head}${trace}no tasks\n`;
  const rows = [...status.tasks]
    .sort((a, b) => a.id - b.id)
    .map((t) => [String(t.id), t.state, t.worker_id || '-', t.trace ? firstLine(t.trace) : '']);
  return `${head}${trace}${table(['TASK', 'STATE', 'WORKER', 'TRACE'], rows)}`;
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 100 ? `${line.slice(0, 99)}…` : line;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}
