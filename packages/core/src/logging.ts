/**
 * pino JSON logs. Secrets are redacted by key name as a last line of defence: config values
 * of PASSWORD type are already `Password` objects that print `[hidden]`; `scrubLine` (the
 * worker's known secrets) takes any secret or resolved placeholder value out of a line,
 * whichever component logged it.
 */
import { destination, pino, type DestinationStream, type Logger } from 'pino';

export function createLogger(
  options: {
    level?: string;
    name?: string;
    destination?: number | string;
    /** Write each line before returning (tests that read the log). */
    sync?: boolean;
    /** Applied to every line before it is written. */
    scrubLine?: (line: string) => string;
  } = {},
): Logger {
  const sink = destination({ dest: options.destination ?? 1, sync: options.sync ?? false });
  const scrubLine = options.scrubLine;
  // pino calls flush (logger.flush) and flushSync on its stream when they exist: pass them on.
  const stream: DestinationStream = scrubLine
    ? {
        write: (line: string) => sink.write(scrubLine(line)),
        flush: (done?: (error?: Error) => void) => sink.flush(done),
        flushSync: () => sink.flushSync(),
        end: () => sink.end(),
      } as DestinationStream
    : sink;
  return pino(
    {
      name: options.name ?? 'omnibus',
      level: options.level ?? process.env.OMNIBUS_LOG_LEVEL ?? 'info',
      redact: {
        paths: ['*.password', '*.secret', '*.token', 'config["*.password"]', 'headers.authorization', 'req.headers.authorization'],
        censor: '[hidden]',
      },
    },
    stream,
  );
}
