/**
 * FileSink (alias FileStreamSink, after Kafka's): appends every message it receives to a file,
 * one JSON line each. For demos, debugging and benchmarks of the bus without a provider.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigSpec, defineSinkConnector, RetriableError, validators, type SinkOutcome, type SinkRecord, type SinkTask } from '@omnibus/sdk';
import { VERSION } from '../version.ts';

const spec = ConfigSpec.builder()
  .string('file', {
    documentation: 'Path of the file the messages are appended to (created with its directories if missing).',
    importance: 'HIGH',
    validator: validators.nonEmptyString(),
  })
  .boolean('file.fsync', {
    documentation: 'Flush every batch to disk before reporting it sent (slower; survives a power loss).',
    default: false,
    importance: 'LOW',
  });

type FileSinkConfig = ReturnType<typeof spec.parse>;

class FileSinkTask implements SinkTask<FileSinkConfig> {
  private file: FileHandle | undefined;
  private fsync = false;

  async start(config: FileSinkConfig): Promise<void> {
    await mkdir(dirname(config.file), { recursive: true });
    this.file = await open(config.file, 'a');
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
      const error = new RetriableError(`could not append to the file: ${(cause as Error).message}`, { code: 'OMNI_ERR_FILE_WRITE', cause });
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
  createTask: () => new FileSinkTask(),
});

export default FileSink;
