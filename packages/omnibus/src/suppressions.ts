/**
 * `omnibus suppressions …`: the suppression list of a running worker (`/suppressions`): add an
 * address on a channel, remove it, show its entries, list them all page by page.
 */
import type { Command } from 'commander';
import { clientAction, expectOk, table, withConnectionOptions, type CliIo, type ExitState } from './connectors.ts';

interface SuppressionBody {
  channel: string;
  address: string;
  category: string;
  reason: string;
  code?: string;
  connector?: string;
  note?: string;
  created_at: number;
}

const row = (entry: SuppressionBody): string[] => [
  entry.channel,
  entry.address,
  entry.category,
  entry.reason,
  entry.code ?? entry.connector ?? '',
  new Date(entry.created_at).toISOString(),
];
const HEADERS = ['CHANNEL', 'ADDRESS', 'CATEGORY', 'REASON', 'CODE', 'SINCE'];

const addressPath = (channel: string, address: string) => `/suppressions/${encodeURIComponent(channel)}/${encodeURIComponent(address)}`;

export function registerSuppressionsCommand(program: Command, io: CliIo, exit: ExitState): void {
  const suppressions = withConnectionOptions(
    program.command('suppressions').description('manage the suppression list of a running worker (addresses that get no message on a channel)'),
  );
  const action = clientAction(io, exit);

  suppressions
    .command('add <channel> <address>')
    .description('suppress an address on a channel (email, sms, whatsapp): for every category, or one with --category')
    .option('--category <category>', 'only messages of this category (e.g. marketing); default: all')
    .option('--reason <reason>', 'manual (default), stop, opted-out, hard-bounce or blocked')
    .option('--note <note>', 'a note kept with the entry')
    .action(
      action(async (client, channel: string, address: string, options: { category?: string; reason?: string; note?: string }) => {
        const entry = expectOk(await client.call('POST', '/suppressions', { channel, address, ...options })) as SuppressionBody;
        io.out(`suppressed ${entry.address} on ${entry.channel} (${entry.category})\n`);
      }),
    );

  suppressions
    .command('remove <channel> <address>')
    .description("lift an address's suppression on a channel: every entry, or one category's with --category")
    .option('--category <category>', 'remove only this category\'s entry ("all" included)')
    .action(
      action(async (client, channel: string, address: string, options: { category?: string }) => {
        const query = options.category === undefined ? '' : `?category=${encodeURIComponent(options.category)}`;
        expectOk(await client.call('DELETE', `${addressPath(channel, address)}${query}`));
        io.out(`lifted ${address} on ${channel}${options.category === undefined ? '' : ` (${options.category})`}\n`);
      }),
    );

  suppressions
    .command('show <channel> <address>')
    .description("an address's entries on a channel")
    .action(
      action(async (client, channel: string, address: string) => {
        const body = expectOk(await client.call('GET', addressPath(channel, address))) as { suppressions: SuppressionBody[] };
        io.out(table(HEADERS, body.suppressions.map(row)));
      }),
    );

  suppressions
    .command('list')
    .description('the whole list, page after page')
    .option('--page-size <n>', 'entries per request (1 to 1000)', '500')
    .action(
      action(async (client, options: { pageSize: string }) => {
        const rows: string[][] = [];
        let cursor: string | undefined;
        do {
          const query = `limit=${encodeURIComponent(options.pageSize)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const page = expectOk(await client.call('GET', `/suppressions?${query}`)) as { suppressions: SuppressionBody[]; next_cursor?: string };
          rows.push(...page.suppressions.map(row));
          cursor = page.next_cursor;
        } while (cursor);
        io.out(rows.length === 0 ? 'no suppressions\n' : table(HEADERS, rows));
      }),
    );
}
