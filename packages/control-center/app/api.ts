/**
 * The worker's public REST API, as the control center calls it: same-origin fetches carrying the
 * operator's credentials (kept in sessionStorage, so they end with the tab). `credentials: 'omit'`
 * keeps the browser from answering a 401 with its own basic-auth prompt: the login form does.
 */

export type Credentials = { scheme: 'basic'; user: string; password: string } | { scheme: 'bearer'; token: string };

const STORAGE_KEY = 'omnibus.credentials';

export function loadCredentials(): Credentials | undefined {
  try {
    const text = sessionStorage.getItem(STORAGE_KEY);
    return text ? (JSON.parse(text) as Credentials) : undefined;
  } catch {
    return undefined;
  }
}

export function saveCredentials(credentials: Credentials | undefined): void {
  if (credentials) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
  else sessionStorage.removeItem(STORAGE_KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The schemes a 401 offered (`basic`, `bearer`). */
    readonly challenges: string[] = [],
  ) {
    super(message);
  }
}

/** Called on every 401, so that the shell can show the login form. */
let onUnauthorized: (error: ApiError) => void = () => {};
export function whenUnauthorized(handler: (error: ApiError) => void): void {
  onUnauthorized = handler;
}

function authorization(credentials: Credentials | undefined): Record<string, string> {
  if (!credentials) return {};
  if (credentials.scheme === 'bearer') return { authorization: `Bearer ${credentials.token}` };
  const bytes = new TextEncoder().encode(`${credentials.user}:${credentials.password}`);
  return { authorization: `Basic ${btoa(String.fromCharCode(...bytes))}` };
}

function challengesOf(response: Response): string[] {
  const header = response.headers.get('www-authenticate') ?? '';
  return ['basic', 'bearer'].filter((scheme) => new RegExp(`(^|[ ,])${scheme} `, 'i').test(header));
}

async function call(method: string, path: string, body?: unknown, credentials = loadCredentials()): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json', ...authorization(credentials) };
  // On every state-changing call, body or not (the API takes an empty JSON body on pause, restart…):
  // a cross-site form cannot send it, so a worker that checks for it still accepts the UI.
  if (body !== undefined || method !== 'GET') headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'omit',
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const error = (await response.json()) as { message?: string };
    if (error.message) message = error.message;
  } catch {
    // Not a JSON error body: the status line says enough.
  }
  const error = new ApiError(response.status, message, challengesOf(response));
  if (response.status === 401) onUnauthorized(error);
  throw error;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await call(method, path, body);
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

export async function getText(path: string): Promise<string> {
  return (await call('GET', path)).text();
}

/** Tries credentials without storing them: resolves when the worker accepts them. */
export async function checkCredentials(credentials: Credentials | undefined): Promise<void> {
  await call('GET', '/connectors', undefined, credentials);
}

export const enc = encodeURIComponent;

// The API's shapes, as far as the control center reads them.

export interface TaskStatus {
  id: number;
  state: string;
  worker_id: string;
  trace?: string;
}

export interface ConnectorStatus {
  name: string;
  connector: { state: string; worker_id: string; trace?: string };
  tasks: TaskStatus[];
  type: string;
}

export interface ConnectorInfo {
  name: string;
  config: Record<string, string>;
  tasks: Array<{ connector: string; task: number }>;
  type: string;
}

export type ConnectorsExpanded = Record<string, { status?: ConnectorStatus; info?: ConnectorInfo }>;

export interface ConfigDefinition {
  name: string;
  type: string;
  required: boolean;
  default_value: string | null;
  importance: string;
  documentation: string;
  group: string | null;
  display_name: string;
  order: number;
}

export interface ConfigValidation {
  name: string;
  error_count: number;
  groups: string[];
  configs: Array<{ definition: ConfigDefinition; value: { name: string; value: string | null; errors: string[]; visible: boolean } }>;
}

export interface Topic {
  name: string;
  shards: number;
  'retention.ms': number;
  created_at: number;
  schema?: unknown;
}

export interface MessageReport {
  message: {
    id: string;
    topic: string;
    key: string;
    shard: number;
    value: unknown;
    headers: Record<string, string>;
    group?: string;
    created_at: number;
  };
  deliveries: Array<{
    connector: string;
    state: string;
    attempts: number;
    epoch: number;
    worker_id: string;
    provider_id?: string;
    last_error?: { code?: string; message?: string } | string;
    next_attempt_at?: number;
    updated_at: number;
  }>;
  events: Array<{ at: number; type: string; connector?: string; worker_id?: string; detail?: Record<string, unknown> }>;
}

export interface GroupReport {
  group: string;
  messages: number;
  truncated: boolean;
  connectors: Record<string, Record<string, number>>;
}

export interface WorkerInfo {
  worker_id: string;
  url: string;
  started_at: number;
  heartbeat_at: number;
  heartbeat_age_ms: number;
}

export interface TopicMessages {
  messages: Array<MessageReport['message']>;
  next_since?: number;
}

export interface BacklogShard {
  topic: string;
  shard: number;
  task: number | null;
  worker_id: string | null;
  waiting: number;
  oldest_waiting_ms: number;
}

export interface TopicBacklog {
  topic: string;
  connectors: Array<{ name: string; waiting: number; oldest_waiting_ms: number; shards: BacklogShard[] }>;
  workers_unreachable: string[];
}

export interface ConnectorBacklogReport {
  name: string;
  waiting: number;
  oldest_waiting_ms: number;
  shards: BacklogShard[];
  workers_unreachable: string[];
}
