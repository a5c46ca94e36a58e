import { readFileSync } from 'node:fs';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The runtime's version, as `GET /` reports it. */
export const VERSION: string = manifest.version;
