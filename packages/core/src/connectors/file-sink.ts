/**
 * FileSink (alias FileStreamSink, after Kafka's): appends every message it receives to a file,
 * one JSON line each. For demos, debugging and benchmarks of the bus without a provider.
 *
 * Whoever may call the REST API chooses `file`, so the worker's operator decides where that
 * may be: OMNIBUS_FILE_SINK_ALLOWED_DIRS, read from the worker's environment (never from a
 * connector config, so no REST caller can widen it), lists the directories FileSink writes
 * under. Unset or empty, FileSink is refused. A path is checked when the connector is
 * validated and again when each task opens it (another worker may allow less).
 */
import { constants, lstatSync, realpathSync } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ConfigError, ConfigSpec, defineSinkConnector, RetriableError, validators, type SinkOutcome, type SinkRecord, type SinkTask } from '@omnibus/sdk';
import { VERSION } from '../version.ts';

/** The worker environment variable listing the directories FileSink may write under (comma-separated). */
export const FILE_SINK_ALLOWED_DIRS_ENV = 'OMNIBUS_FILE_SINK_ALLOWED_DIRS';

const spec = ConfigSpec.builder()
  .string('file', {
    documentation:
      `Path of the file the messages are appended to, inside one of the directories the worker's ${FILE_SINK_ALLOWED_DIRS_ENV} ` +
      'environment variable lists (a relative path is taken inside the first of them). Missing directories below the allowed ' +
      'one are created. Refused: ".." segments, paths outside the allowed directories, symbolic links leading out of them, ' +
      'and anything but a regular file.',
    importance: 'HIGH',
    validator: validators.nonEmptyString(),
  })
  .boolean('file.fsync', {
    documentation: 'Flush every batch to disk before reporting it sent (slower; survives a power loss).',
    default: false,
    importance: 'LOW',
  });

type FileSinkConfig = ReturnType<typeof spec.parse>;

/** The allowed directories from the worker's environment, absolute; empty when FileSink is disabled. */
export function fileSinkAllowedDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[FILE_SINK_ALLOWED_DIRS_ENV] ?? '')
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
 * Where FileSink may write for `file`: the absolute path, and its real form (symbolic links of
 * its existing part resolved). Throws a message that names no path: the value may come from a
 * placeholder, and the answer must not tell which files exist outside the allowed directories.
 */
export function checkFileSinkPath(file: string, allowedDirs: readonly string[]): { path: string; realPath: string } {
  if (allowedDirs.length === 0) {
    throw new Error(`FileSink is disabled on this worker: its operator has not set ${FILE_SINK_ALLOWED_DIRS_ENV} (the directories FileSink may write under).`);
  }
  if (file.includes('\0')) throw new Error('The path must not contain NUL characters.');
  if (file.split(/[/\\]/).includes('..')) throw new Error('The path must not contain ".." segments.');
  const path = isAbsolute(file) ? resolve(file) : resolve(allowedDirs[0] as string, file);
  const root = allowedDirs.find((dir) => isInside(path, dir) || isInside(path, realPathOrUndefined(dir) ?? dir));
  if (root === undefined) {
    throw new Error(`The path must be inside a directory this worker allows FileSink to write under (${FILE_SINK_ALLOWED_DIRS_ENV}).`);
  }
  const realRoot = realPathOrUndefined(root);
  if (realRoot === undefined) throw new Error(`A directory of ${FILE_SINK_ALLOWED_DIRS_ENV} does not exist on this worker.`);
  // Follow every symbolic link of the part that exists: it must still end up inside.
  const { existing, missing } = nearestExisting(path);
  const realExisting = realPathOrUndefined(existing);
  const realPath = realExisting === undefined ? undefined : join(realExisting, ...missing);
  if (realPath === undefined || !isInside(realPath, realRoot)) {
    throw new Error('The path leads outside the directories FileSink may write under (through a symbolic link).');
  }
  if (missing.length === 0) {
    const stats = lstatSync(path);
    if (!stats.isFile()) throw new Error('The path names something other than a regular file.');
    if (stats.nlink > 1) throw new Error('The file has other hard links; FileSink writes only to a file of its own.');
  }
  return { path, realPath };
}

function validateFileSink(config: FileSinkConfig): Record<string, string[]> {
  try {
    checkFileSinkPath(config.file, fileSinkAllowedDirs());
    return {};
  } catch (error) {
    return { file: [(error as Error).message] };
  }
}

class FileSinkTask implements SinkTask<FileSinkConfig> {
  private file: FileHandle | undefined;
  private fsync = false;

  async start(config: FileSinkConfig): Promise<void> {
    const allowedDirs = fileSinkAllowedDirs();
    let checked: { path: string; realPath: string };
    try {
      checked = checkFileSinkPath(config.file, allowedDirs);
    } catch (error) {
      throw new ConfigError({ file: [(error as Error).message] });
    }
    let file: FileHandle;
    try {
      // Directories are created from the real, checked path: never through a link.
      await mkdir(dirname(checked.realPath), { recursive: true });
      // O_NOFOLLOW: a link put in place of the file since the check is not followed.
      file = await open(checked.realPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0), 0o644);
    } catch (error) {
      // The system's message names the path, which may hold a resolved placeholder: give its code only.
      throw new ConfigError({ file: [`The file could not be opened for appending (${(error as NodeJS.ErrnoException).code ?? 'error'}).`] });
    }
    try {
      const again = checkFileSinkPath(checked.realPath, allowedDirs);
      if (again.realPath !== checked.realPath || !(await file.stat()).isFile()) throw new Error('The path changed while it was opened.');
    } catch (error) {
      await file.close();
      throw new ConfigError({ file: [(error as Error).message] });
    }
    this.file = file;
    this.fsync = config['file.fsync'];
  }

  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    if (!this.file) throw new Error('FileSink task is not started');
    let text = '';
    for (const r of records) text += `${JSON.stringify({ id: r.id, topic: r.topic, key: r.key, shard: r.shard, value: r.value, headers: r.headers })}\n`;
    const bytes = Buffer.from(text);
    try {
      // One write per batch, in append mode: the batch's lines land together, never interleaved
      // with another task's or another worker's lines (a regular file's appends do not mix). A
      // short write is finished by another.
      for (let offset = 0; offset < bytes.length; ) {
        const { bytesWritten } = await this.file.write(bytes, offset, bytes.length - offset);
        offset += bytesWritten;
      }
      if (this.fsync) await this.file.sync();
    } catch (cause) {
      const reason = (cause as NodeJS.ErrnoException).code ?? 'error';
      const error = new RetriableError(`could not append to the file (${reason})`, { code: 'OMNI_ERR_FILE_WRITE', cause });
      return records.map(() => ({ status: 'retry', error: { code: error.code, message: error.message } }));
    }
    return records.map(() => ({ status: 'sent' }));
  }

  async stop(): Promise<void> {
    await this.file?.close();
    this.file = undefined;
  }
}

export const FileSink = defineSinkConnector<FileSinkConfig>({
  className: 'FileSink',
  aliases: ['FileStreamSink', '@omnibus/core/FileSink'],
  version: VERSION,
  description: 'Appends each message to a file as one JSON line {id, topic, key, shard, value, headers}.',
  config: spec,
  validate: validateFileSink,
  createTask: () => new FileSinkTask(),
});

export default FileSink;
