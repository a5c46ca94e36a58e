/**
 * The runtime's error registry: one class, stable codes, one HTTP status each. The REST
 * layer maps every thrown error through {@link toHttpError}, so a handler never builds an
 * error body by hand and an unexpected exception is the only thing that becomes a 500.
 */
import { isConfigError, OmnibusError } from '@omnibus/sdk';

export class HttpError extends OmnibusError {
  readonly status: number;
  /** Extra fields for the JSON body (e.g. per-item errors of a rejected batch). */
  readonly details: Record<string, unknown> | undefined;
  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(code, message);
    this.status = status;
    this.details = details;
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>, code = 'OMNI_ERR_REQUEST_INVALID') =>
  new HttpError(400, code, message, details);
export const notFound = (message: string, code = 'OMNI_ERR_NOT_FOUND') => new HttpError(404, code, message);
export const conflict = (message: string, code = 'OMNI_ERR_CONFLICT') => new HttpError(409, code, message);
export const unprocessable = (message: string, details?: Record<string, unknown>, code = 'OMNI_ERR_VALIDATION') =>
  new HttpError(422, code, message, details);

/** The body every non-2xx response carries, as Kafka Connect's ErrorMessage. */
export interface ErrorBody {
  error_code: number;
  message: string;
  [extra: string]: unknown;
}

export function toHttpError(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof HttpError) {
    return { status: error.status, body: { error_code: error.status, message: error.message, ...error.details } };
  }
  if (isConfigError(error)) {
    return { status: 400, body: { error_code: 400, message: error.message, errors: error.errors } };
  }
  // Fastify's own errors (bad JSON, body too large, unsupported media type) carry a statusCode.
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: { error_code: status, message: (error as Error).message } };
  }
  return { status: 500, body: { error_code: 500, message: error instanceof Error ? error.message : String(error) } };
}
