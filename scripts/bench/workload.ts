/**
 * The benchmark's workload, the same for Omnibus and BullMQ: notification-like messages of
 * about 200 bytes, keyed by one of 10,000 recipients, produced in batches by a few clients.
 */

export const RECIPIENTS = 10_000;
export const BATCH = 500;
export const CLIENTS = 8;

export interface BenchMessage {
  key: string;
  value: { to: string; subject: string; body: string; n: number; sentAt?: number };
}

export function message(n: number): BenchMessage {
  const to = `user-${n % RECIPIENTS}@example.org`;
  return { key: to, value: { to, subject: 'Your order has shipped', body: `Order ${n} left our warehouse today and should reach you within 3 days.`, n } };
}

/** Messages [from, to) in batches of `batch`. */
export function batches(from: number, to: number, batch = BATCH): BenchMessage[][] {
  const out: BenchMessage[][] = [];
  for (let start = from; start < to; start += batch) {
    const items: BenchMessage[] = [];
    for (let n = start; n < Math.min(to, start + batch); n++) items.push(message(n));
    out.push(items);
  }
  return out;
}

/** Runs `send` on every item with `clients` in flight at once (each client sends its next item when the last is answered). */
export async function withClients<T>(items: readonly T[], clients: number, send: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const client = async () => {
    while (next < items.length) await send(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(clients, items.length) }, client));
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The middle value, unsorted input (the lower middle of an even count). */
export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it is true; throws after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}
