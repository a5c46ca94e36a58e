/**
 * A small client of a worker's REST API for the CLI verbs. It turns the three ways a call can
 * end into values the commands print: a body, the server's `{error_code, message}`, or a
 * failure to reach the worker at all.
 */

export const DEFAULT_URL = 'http://127.0.0.1:8083';

export interface ClientOptions {
  url: string;
  token?: string;
}

/** A failure keeps the server's whole body too: a 422's `errors` name each field it refused. */
export type CallResult = { ok: true; status: number; body: unknown } | { ok: false; status: number; message: string; body?: unknown };

/** The worker could not be reached (refused, DNS, bad URL): the CLI exits with 3. */
export class UnreachableError extends Error {}

export class RestClient {
  private readonly base: URL;

  constructor(private readonly options: ClientOptions) {
    try {
      this.base = new URL(options.url);
    } catch {
      throw new UnreachableError(`${options.url} is not a URL`);
    }
  }

  get url(): string {
    return this.base.href.replace(/\/$/, '');
  }

  async call(method: string, path: string, body?: unknown): Promise<CallResult> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(new URL(path.replace(/^\//, ''), `${this.url}/`), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(100_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new UnreachableError(`cannot connect to ${this.url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (response.ok) return { ok: true, status: response.status, body: parsed };
    const message =
      parsed && typeof parsed === 'object' && typeof (parsed as { message?: unknown }).message === 'string'
        ? (parsed as { message: string }).message
        : `HTTP ${response.status} ${response.statusText}`;
    return { ok: false, status: response.status, message, body: parsed };
  }
}
