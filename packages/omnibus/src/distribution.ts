/**
 * This package as the runtime sees it: the distribution whose dependencies are the first-party
 * connectors a worker started by the `omnibus` command finds without any plugin.path.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WorkerOptions } from '@omnibus/core';

/** The package's directory: one level above this module, in the sources and in the build. */
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The command's version, as `omnibus --version` prints it. */
export const VERSION: string = manifest.version;

/** What every worker this command starts is given. */
export const DISTRIBUTION: WorkerOptions = { distributionDirs: [PACKAGE_DIR] };
