// A second, separate copy of @omnibus/sdk, as a plugin installed with its own npm copy would bring.
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Sdk from '../../../packages/sdk/src/index.ts';

const SDK_PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../packages/sdk');

export interface SdkCopy {
  /** The copy's module namespace: the same exports as `@omnibus/sdk`, from other module instances. */
  sdk: typeof Sdk;
  /** Where the copy lives (a temporary directory outside the workspace). */
  dir: string;
  remove(): void;
}

/**
 * Copies the SDK's sources to a temporary directory and imports them from there, so that
 * every class in it (errors, Password, ConfigSpec) is a different class from the workspace's.
 * Its dependencies resolve through a link to the SDK's own node_modules.
 */
export async function loadSdkCopy(): Promise<SdkCopy> {
  const dir = mkdtempSync(join(tmpdir(), 'omnibus-sdk-copy-'));
  cpSync(join(SDK_PACKAGE_DIR, 'src'), join(dir, 'src'), { recursive: true, filter: (source) => !source.endsWith('.test.ts') });
  cpSync(join(SDK_PACKAGE_DIR, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(SDK_PACKAGE_DIR, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const sdk = (await import(pathToFileURL(join(dir, 'src', 'index.ts')).href)) as typeof Sdk;
  return { sdk, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
