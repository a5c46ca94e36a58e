/**
 * Errors a connector raises to tell the runtime what to do with a record or a task.
 *
 * Every error carries a stable code (`OMNI_ERR_<AREA>_<PROBLEM>`) so that operators can
 * alert on it and dead-letter headers can name it; the message is for humans.
 */
export class OmnibusError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The attempt failed but may succeed later (timeout, SMTP 4xx, HTTP 429/5xx, SMPP throttling). */
export class RetriableError extends OmnibusError {
  /** The provider's own hint (Retry-After, a throttling window); the runtime honours it over its backoff. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { code?: string; retryAfterMs?: number; cause?: unknown } = {}) {
    super(options.code ?? 'OMNI_ERR_PROVIDER_RETRIABLE', message, { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The record can never be delivered as it is (SMTP 5xx, invalid number, opted out): fail it at once. */
export class PermanentError extends OmnibusError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The connector cannot work at all (revoked credentials, a misconfigured account). The
 * runtime fails the task with this error as its trace. Throwing it promises that the records
 * of the current `put` were NOT handed to the provider, so they stay pending for a restart.
 */
export class FatalConnectorError extends OmnibusError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A config that does not satisfy its spec. `errors` maps each config key to its problems. */
export class ConfigError extends OmnibusError {
  readonly errors: Record<string, string[]>;
  constructor(errors: Record<string, string[]>) {
    const summary = Object.entries(errors)
      .map(([key, problems]) => `${key}: ${problems.join('; ')}`)
      .join(', ');
    super('OMNI_ERR_CONFIG_INVALID', `Invalid configuration: ${summary}`);
    this.errors = errors;
  }
}

export const isRetriable = (error: unknown): error is RetriableError => error instanceof RetriableError;
export const isPermanent = (error: unknown): error is PermanentError => error instanceof PermanentError;
