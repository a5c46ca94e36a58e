/**
 * Errors a connector raises to tell the runtime what to do with a record or a task.
 *
 * Every error carries a stable code (`OMNI_ERR_<AREA>_<PROBLEM>`) so that operators can
 * alert on it and dead-letter headers can name it; the message is for humans.
 *
 * A connector may be built against its own copy of this package, so the runtime recognises
 * these errors by brand (see brand.ts), never by class identity: `instanceof` on these
 * classes, and the `is…` guards below, answer true for an error made by any copy.
 */
import { brandedInstanceOf, brandPrototype, hasBrand } from './brand.ts';

export class OmnibusError extends Error {
  static {
    brandPrototype(this, 'OmnibusError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return brandedInstanceOf(this, OmnibusError, 'OmnibusError', value);
  }
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The attempt failed but may succeed later (timeout, SMTP 4xx, HTTP 429/5xx, SMPP throttling). */
export class RetriableError extends OmnibusError {
  static {
    brandPrototype(this, 'RetriableError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return brandedInstanceOf(this, RetriableError, 'RetriableError', value);
  }
  /** The provider's own hint (Retry-After, a throttling window); the runtime honours it over its backoff. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { code?: string; retryAfterMs?: number; cause?: unknown } = {}) {
    super(options.code ?? 'OMNI_ERR_PROVIDER_RETRIABLE', message, { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The record can never be delivered as it is (SMTP 5xx, invalid number, opted out): fail it at once. */
export class PermanentError extends OmnibusError {
  static {
    brandPrototype(this, 'PermanentError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return brandedInstanceOf(this, PermanentError, 'PermanentError', value);
  }
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
  static {
    brandPrototype(this, 'FatalConnectorError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return brandedInstanceOf(this, FatalConnectorError, 'FatalConnectorError', value);
  }
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A config that does not satisfy its spec. `errors` maps each config key to its problems. */
export class ConfigError extends OmnibusError {
  static {
    brandPrototype(this, 'ConfigError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return brandedInstanceOf(this, ConfigError, 'ConfigError', value);
  }
  readonly errors: Record<string, string[]>;
  constructor(errors: Record<string, string[]>) {
    const summary = Object.entries(errors)
      .map(([key, problems]) => `${key}: ${problems.join('; ')}`)
      .join(', ');
    super('OMNI_ERR_CONFIG_INVALID', `Invalid configuration: ${summary}`);
    this.errors = errors;
  }
}

/** Guards that hold across copies of the SDK (by brand, as `instanceof` on these classes does). */
export const isOmnibusError = (error: unknown): error is OmnibusError => hasBrand(error, 'OmnibusError');
export const isRetriable = (error: unknown): error is RetriableError => hasBrand(error, 'RetriableError');
export const isPermanent = (error: unknown): error is PermanentError => hasBrand(error, 'PermanentError');
export const isFatalConnectorError = (error: unknown): error is FatalConnectorError => hasBrand(error, 'FatalConnectorError');
export const isConfigError = (error: unknown): error is ConfigError =>
  hasBrand(error, 'ConfigError') && typeof (error as { errors?: unknown }).errors === 'object' && (error as { errors?: unknown }).errors !== null;
