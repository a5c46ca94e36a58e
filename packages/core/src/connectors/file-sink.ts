/**
 * FileSink (alias FileStreamSink, after Kafka's): appends every message it receives to a file,
 * one JSON line each. For demos, debugging and benchmarks of the bus without a provider.
 *
 * Whoever may call the REST API chooses `file`, so the worker's operator decides where that
 * may be: OMNIBUS_FILE_SINK_ALLOWED_DIRS, read from the worker's environment (never from a
 * connector config, so no REST caller can widen it), lists the directories FileSink writes
 * under. Unset or empty, FileSink is refused. A path is checked (the SDK's checkWritablePath)
 * when the connector is validated and again when each task opens it (another worker may
 * allow less).
 */
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  checkWritablePath,
  ConfigError,
  ConfigSpec,
  defineSinkConnector,
  RetriableError,
  validators,
  WRITABLE_DIRS_ENV,
  writableDirs,
  type SinkOutcome,
  type SinkRecord,
  type SinkTask,
} from '@omnibus/sdk';
import { VERSION } from '../version.ts';

/** The worker environment variable listing the directories FileSink may write under (comma-separated). */
export const FILE_SINK_ALLOWED_DIRS_ENV = WRITABLE_DIRS_ENV;

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

function validateFileSink(config: FileSinkConfig): Record<string, string[]> {
  try {
    checkWritablePath(config.file, writableDirs());
    return {};
  } catch (error) {
    return { file: [(error as Error).message] };
  }
}

class FileSinkTask implements SinkTask<FileSinkConfig> {
  private file: FileHandle | undefined;
  private fsync = false;

  async start(config: FileSinkConfig): Promise<void> {
    const allowedDirs = writableDirs();
    let checked: { path: string; realPath: string };
    try {
      checked = checkWritablePath(config.file, allowedDirs);
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
      const again = checkWritablePath(checked.realPath, allowedDirs);
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
