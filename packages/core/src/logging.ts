/**
 * pino JSON logs. Secrets are redacted by key name as a last line of defence: config values
 * of PASSWORD type are already `Password` objects that print `[hidden]`.
 */
import { destination, pino, type Logger } from 'pino';

export function createLogger(
  options: { level?: string; name?: string; destination?: number | string; /** Write each line before returning (tests that read the log). */ sync?: boolean } = {},
): Logger {
  return pino(
    {
      name: options.name ?? 'omnibus',
      level: options.level ?? process.env.OMNIBUS_LOG_LEVEL ?? 'info',
      redact: {
        paths: ['*.password', '*.secret', '*.token', 'config["*.password"]', 'headers.authorization', 'req.headers.authorization'],
        censor: '[hidden]',
      },
    },
    destination({ dest: options.destination ?? 1, sync: options.sync ?? false }),
  );
}
