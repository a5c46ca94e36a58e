/**
 * Where connectors may write files. Whoever may call the REST API chooses a connector's config,
 * so a path in it (FileSink's `file`, any connector's output file) is checked against the
 * directories the worker's operator allows: OMNIBUS_FILE_SINK_ALLOWED_DIRS, read from the
 * worker's environment (never from a connector config, so no REST caller can widen it). Unset
 * or empty, no path is allowed.
 *
 *   const { realPath } = checkWritablePath(config.file, writableDirs()); // throws with a message naming no path
 */
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** The worker environment variable listing the directories connectors may write under (comma-separated). */
export const WRITABLE_DIRS_ENV = 'OMNIBUS_FILE_SINK_ALLOWED_DIRS';

/** The allowed directories from the worker's environment, absolute; empty when writing files is disabled. */
export function writableDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[WRITABLE_DIRS_ENV] ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => resolve(entry));
}

/** `path` lies strictly below `directory` (both absolute and normalized). */
function isInside(path: string, directory: string): boolean {
  const rel = relative(directory, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

function realPathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/** The deepest existing ancestor of `path` (or `path` itself) and the segments below it that do not exist yet. */
function nearestExisting(path: string): { existing: string; missing: string[] } {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    try {
      lstatSync(current);
      return { existing: current, missing };
    } catch {
      const parent = dirname(current);
      if (parent === current) return { existing: current, missing };
      missing.unshift(current.slice(parent.length).replace(/^[/\\]+/, ''));
      current = parent;
    }
  }
}

/**
 * Where a connector may write for `file`: the absolute path, and its real form (symbolic links of
 * its existing part resolved). Throws a message that names no path: the value may come from a
 * placeholder, and the answer must not tell which files exist outside the allowed directories.
 */
export function checkWritablePath(file: string, allowedDirs: readonly string[]): { path: string; realPath: string } {
  if (allowedDirs.length === 0) {
    throw new Error(`Writing files is disabled on this worker: its operator has not set ${WRITABLE_DIRS_ENV} (the directories connectors may write under).`);
  }
  if (file.includes('\0')) throw new Error('The path must not contain NUL characters.');
  if (file.split(/[/\\]/).includes('..')) throw new Error('The path must not contain ".." segments.');
  const path = isAbsolute(file) ? resolve(file) : resolve(allowedDirs[0] as string, file);
  const root = allowedDirs.find((dir) => isInside(path, dir) || isInside(path, realPathOrUndefined(dir) ?? dir));
  if (root === undefined) {
    throw new Error(`The path must be inside a directory this worker allows connectors to write under (${WRITABLE_DIRS_ENV}).`);
  }
  const realRoot = realPathOrUndefined(root);
  if (realRoot === undefined) throw new Error(`A directory of ${WRITABLE_DIRS_ENV} does not exist on this worker.`);
  // Follow every symbolic link of the part that exists: it must still end up inside.
  const { existing, missing } = nearestExisting(path);
  const realExisting = realPathOrUndefined(existing);
  const realPath = realExisting === undefined ? undefined : join(realExisting, ...missing);
  if (realPath === undefined || !isInside(realPath, realRoot)) {
    throw new Error('The path leads outside the directories connectors may write under (through a symbolic link).');
  }
  if (missing.length === 0) {
    const stats = lstatSync(path);
    if (!stats.isFile()) throw new Error('The path names something other than a regular file.');
    if (stats.nlink > 1) throw new Error('The file has other hard links; connectors write only to a file of its own.');
  }
  return { path, realPath };
}
