#!/usr/bin/env node
/**
 * The `omnibus` command: `start` runs a worker; the other verbs talk to a running worker's
 * REST API, as an operator would with curl.
 */
import { Command } from 'commander';
import { VERSION } from '../version.ts';
import { registerStartCommand } from './start.ts';

const program = new Command('omnibus').description('Omnibus: omnichannel message delivery on a shard-aware bus').version(VERSION);
registerStartCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`omnibus: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
