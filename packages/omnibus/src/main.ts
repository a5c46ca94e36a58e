#!/usr/bin/env node
/**
 * The `omnibus` command: `start` runs a worker; the other verbs talk to a running worker's
 * REST API, as an operator would with curl.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { registerCancelCommands } from './cancel.ts';
import { EXIT, registerConnectorsCommand, type CliIo, type ExitState } from './connectors.ts';
import { registerDemoCommand } from './demo.ts';
import { VERSION } from './distribution.ts';
import { registerProduceCommands } from './produce.ts';
import { registerStartCommand } from './start.ts';
import { registerSuppressionsCommand } from './suppressions.ts';

const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  env: process.env,
  stdin: () => readFileSync(0, 'utf8'),
};

export function buildProgram(io: CliIo, exit: ExitState): Command {
  const program = new Command('omnibus')
    .description('Omnibus: omnichannel message delivery on a shard-aware bus')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  registerStartCommand(program);
  registerDemoCommand(program);
  registerConnectorsCommand(program, io, exit);
  const { messages } = registerCancelCommands(program, io, exit);
  registerProduceCommands(messages, io, exit);
  registerSuppressionsCommand(program, io, exit);
  return program;
}

/** Runs the CLI on `argv` (without node and script); resolves with the exit code. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  const exit: ExitState = { code: EXIT.ok };
  try {
    await buildProgram(io, exit).parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end with 0; any other parsing problem is a usage error.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    io.err(`omnibus: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.server;
  }
  return exit.code;
}

function isEntryPoint(): boolean {
  try {
    // Through a bin symlink argv[1] is the link; compare real paths.
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1] ?? '')).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const code = await runCli(process.argv.slice(2));
  // `start` keeps running (its server holds the event loop); the client verbs end here.
  if (code !== EXIT.ok) process.exit(code);
}
