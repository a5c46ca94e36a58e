/**
 * `omnibus messages cancel <id>` and `omnibus groups show|cancel <group>`: cancel what no sink
 * has handed to its provider yet, and read a group's counts, against a running worker's data
 * plane. Exit codes as for `connectors`.
 */
import type { Command } from 'commander';
import { clientAction, clientCommand, expectOk, table, type CliIo, type ExitState } from './connectors.ts';

interface CancelOutcome {
  cancelled: number;
  in_flight: number;
  already: Record<string, number>;
}

/** One row per connector: what the cancel stopped, what was in flight, what was past hand-off. */
function formatCancel(connectors: Record<string, CancelOutcome>): string {
  const names = Object.keys(connectors).sort();
  if (names.length === 0) return 'no sink connector reads these messages\n';
  const rows = names.map((name) => {
    const { cancelled, in_flight: inFlight, already } = connectors[name]!;
    const past = Object.entries(already)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([state, n]) => `${state} ${n}`)
      .join(', ');
    return [name, String(cancelled), String(inFlight), past || '-'];
  });
  return table(['CONNECTOR', 'CANCELLED', 'IN FLIGHT', 'ALREADY'], rows);
}

/** Registers the verbs; returns `messages`, which other verbs on messages join (produce.ts). */
export function registerCancelCommands(program: Command, io: CliIo, exit: ExitState): { messages: Command } {
  const action = clientAction(io, exit);
  const messages = clientCommand(program, 'messages', 'act on produced messages');
  messages
    .command('cancel <id>')
    .description('cancel a message where no sink has handed it to its provider yet')
    .action(
      action(async (client, id: string) => {
        const body = expectOk(await client.call('DELETE', `/messages/${encodeURIComponent(id)}`)) as { connectors: Record<string, CancelOutcome> };
        io.out(`message ${id}:\n${formatCancel(body.connectors)}`);
      }),
    );

  const groups = clientCommand(program, 'groups', 'read and cancel groups of messages (campaigns, batches)');
  groups
    .command('show <group>')
    .description("a group's exact counts by delivery state, per connector")
    .action(
      action(async (client, group: string) => {
        const body = expectOk(await client.call('GET', `/groups/${encodeURIComponent(group)}`)) as {
          messages: number;
          connectors: Record<string, Record<string, number>>;
        };
        const rows = Object.entries(body.connectors)
          .sort(([a], [b]) => a.localeCompare(b))
          .flatMap(([connector, counts]) => Object.entries(counts).map(([state, n]) => [connector, state, String(n)]));
        io.out(`group ${group}: ${body.messages} messages\n${rows.length > 0 ? table(['CONNECTOR', 'STATE', 'MESSAGES'], rows) : ''}`);
      }),
    );
  groups
    .command('cancel <group>')
    .description('cancel every message of the group that no sink has handed off yet (and any produced with it later)')
    .action(
      action(async (client, group: string) => {
        const body = expectOk(await client.call('DELETE', `/groups/${encodeURIComponent(group)}`)) as { messages: number; connectors: Record<string, CancelOutcome> };
        io.out(`group ${group} (${body.messages} messages):\n${formatCancel(body.connectors)}`);
      }),
    );
  return { messages };
}
