/**
 * Cross-worker wake hints. A produce wakes the consumers of its (topic, shard) on the worker
 * that took it (signals.ts), but the shard's consumer may run on another worker, which would
 * see the message only at its next idle poll — and idle polls are rare, since all the idle
 * shards of a worker share a small budget of store reads (consumer.ts). So once the store has
 * acknowledged a produce, this worker tells its live peers which (topic, shard) pairs it wrote:
 * `POST /internal/wake`, at most one request per peer per `intervalMs` (the first after a quiet
 * spell leaves at once), carrying every pair written since the previous one. A peer notifies
 * its own ShardSignals for each pair, as its own produce would; it never relays them.
 *
 * Hints are only hints. Queuing one costs the produce a map insert: nothing is awaited, no
 * failure reaches it. A peer that is down, slow (no answer within `timeoutMs`) or refuses the
 * request gets no hints for `failureBackoffMs`. The pairs of a hint that could not be
 * delivered (no answer, or a 5xx) are kept with what is written meanwhile and sent when the
 * back-off ends, so that a peer slow for a moment learns of them within seconds rather than at
 * its next idle poll; a refused hint (4xx) is dropped, and its peer's consumers find those
 * messages by polling, which is what polling is kept for. A peer gets one request at a time;
 * what is written meanwhile waits for the next.
 *
 * Credentials: when the workers' REST API requires them (`rest.auth.*`), hints carry this
 * worker's first bearer token, or else its first basic user ({@link peerAuthorization}). Every
 * worker of a cluster must accept that credential: give all workers the same `rest.auth.*`
 * settings (or at least a common first entry). A peer answering 401 is logged and left to its
 * polling.
 *
 * Slow writes: a hot read moves on to `now − confidence`, so a write acknowledged later than that
 * after its stamp may have been passed by a peer's consumer before it was visible; the next
 * message of its key, produced once it is acknowledged, would then be handed over first (only a
 * re-read finds the slow one). A hint carries, per pair, where the entries written since the
 * previous one landed (`from`), and the consumers read again from there; and a produce whose
 * write was that slow is acknowledged only once its hint has been answered by every live peer
 * (or has failed, within `timeoutMs`): see {@link ShardSignals.announceSlowWrites}.
 *
 * Clocks: a consumer reads entries up to its own clock, so a hint from a worker whose clock is
 * ahead would wake it too early to see the entries. A hint carries the sender's clock (`at`),
 * and the receiver wakes its consumers once its own clock has reached it (waiting at most
 * {@link MAX_CLOCK_WAIT_MS}).
 */
import type { Logger } from '@omnibus/sdk';
import { coreError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { Member } from '../store/port.ts';
import type { LandedWrite, ShardSignals } from './signals.ts';
import { MAX_SHARDS, TOPIC_NAME_PATTERN } from './topics.ts';

export const WAKE_PATH = '/internal/wake';
/** Most pairs in one hint; a sender holding more sends the rest in its next request. */
export const MAX_WAKE_SHARDS = 10_000;
/** Longest a receiver waits for its clock to reach a hint's `at` (ms); beyond that, polls find the entries. */
export const MAX_CLOCK_WAIT_MS = 1000;

export interface ShardRef {
  topic: string;
  shard: number;
  /** The written entries are stamped this or later (ms since the epoch), when the sender knows. */
  from?: number;
}

/** The body of `POST /internal/wake`. */
export interface WakeHints {
  shards: ShardRef[];
  /** The sender's clock when it sent the hint (ms since the epoch): the hinted entries are no younger. */
  at?: number;
}

export interface PeerWakeOptions {
  signals: ShardSignals;
  /** The live workers as membership last read them (this worker included). */
  members: () => readonly Pick<Member, 'id' | 'url'>[];
  /** This worker's id, left out of `members`. */
  selfId: () => string;
  /** The Authorization header of every hint, when peers require credentials. */
  authorization?: string;
  logger: Logger;
  /** Counts hints sent and failed (omnibus_wake_hints_total). */
  metrics?: Pick<Metrics, 'wakeHints'>;
  /** Least time between two hints to one peer (ms). */
  intervalMs?: number;
  /** A hint not answered in this long is given up (ms). */
  timeoutMs?: number;
  /** A peer that failed a hint gets none for this long (ms); its consumers poll meanwhile. */
  failureBackoffMs?: number;
}

export const DEFAULT_PEER_WAKE = { intervalMs: 25, timeoutMs: 1000, failureBackoffMs: 2000 } as const;

/** topic → shard → the earliest stamp written there since the last hint (undefined: not known). */
type PendingShards = Map<string, Map<number, number | undefined>>;

interface Peer {
  id: string;
  endpoint: string;
  /** Pairs to send this peer next. */
  pending: PendingShards;
  inFlight: boolean;
  /** No hints before this time (ms): the last one failed. */
  quietUntil: number;
  /** The last hint failed (so a failure is logged once, not once per hint). */
  failing: boolean;
}

export class PeerWake {
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly failureBackoffMs: number;
  /** Written since the last flush. */
  private pending: PendingShards = new Map();
  private readonly peers = new Map<string, Peer>();
  private timer: NodeJS.Timeout | undefined;
  private lastFlushAt = -Infinity;
  private unsubscribe: (() => void) | undefined;
  private unannounce: (() => void) | undefined;
  private readonly aborter = new AbortController();
  private stopped = false;
  /** Hints answered by a peer, and hints that failed (for logs and tests). */
  readonly counts = { sent: 0, failed: 0 };

  constructor(private readonly options: PeerWakeOptions) {
    this.intervalMs = options.intervalMs ?? DEFAULT_PEER_WAKE.intervalMs;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PEER_WAKE.timeoutMs;
    this.failureBackoffMs = options.failureBackoffMs ?? DEFAULT_PEER_WAKE.failureBackoffMs;
  }

  /** Starts passing this worker's produces on to its peers. */
  start(): void {
    if (this.unsubscribe || this.stopped) return;
    this.unsubscribe = this.options.signals.onLocalProduce((topic, shard, landedFrom) => this.written(topic, shard, landedFrom));
    this.unannounce = this.options.signals.onSlowWrites((writes) => this.announce(writes));
  }

  /** Stops for good: nothing queued is sent, requests under way are abandoned. */
  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.unannounce?.();
    this.unannounce = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.aborter.abort();
    this.pending.clear();
    this.peers.clear();
  }

  /** Runs inside the produce call: whatever happens here must not fail it. */
  private written(topic: string, shard: number, landedFrom?: number): void {
    try {
      if (this.stopped || !this.hasPeers()) return;
      add(this.pending, topic, shard, landedFrom);
      this.schedule();
    } catch (error) {
      this.options.logger.warn({ err: error, topic, shard }, 'could not queue a wake hint; peers will find the write by polling');
    }
  }

  private hasPeers(): boolean {
    const self = this.options.selfId();
    return this.options.members().some((m) => m.id !== self);
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    // A timer even when due now: the notifications of one produce batch arrive in one turn and go out together.
    const delay = Math.max(0, this.lastFlushAt + this.intervalMs - Date.now());
    this.timer = setTimeout(() => this.flush(), delay);
    this.timer.unref();
  }

  private flush(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = Date.now();
    this.lastFlushAt = now;
    const fresh = this.pending;
    this.pending = new Map();
    for (const peer of this.livePeers()) {
      for (const [topic, shards] of fresh) for (const [shard, from] of shards) add(peer.pending, topic, shard, from);
      // Within a back-off, held for the flush that ends it.
      if (now >= peer.quietUntil && !peer.inFlight && peer.pending.size > 0) this.send(peer);
    }
  }

  /** The live peers as membership last read them; those gone are forgotten. */
  private livePeers(): Peer[] {
    const self = this.options.selfId();
    const live = new Map<string, string>();
    for (const m of this.options.members()) if (m.id !== self && m.url) live.set(m.id, m.url);
    for (const id of this.peers.keys()) if (!live.has(id)) this.peers.delete(id);
    return [...live].map(([id, url]) => {
      let peer = this.peers.get(id);
      const endpoint = `${url.replace(/\/+$/, '')}${WAKE_PATH}`;
      if (!peer || peer.endpoint !== endpoint) {
        peer = { id, endpoint, pending: new Map(), inFlight: false, quietUntil: 0, failing: false };
        this.peers.set(id, peer);
      }
      return peer;
    });
  }

  /**
   * Slow writes, told every live peer at once (beside the coalesced hints, and whatever is in
   * flight to it): resolves once each has answered or failed. A peer in its failure back-off is
   * not waited for: its hint is queued, and its consumers find the writes by their re-reads.
   */
  private async announce(writes: readonly LandedWrite[]): Promise<void> {
    if (this.stopped) return;
    const shards: ShardRef[] = writes.slice(0, MAX_WAKE_SHARDS).map(({ topic, shard, landedFrom }) => ({ topic, shard, from: landedFrom }));
    const now = Date.now();
    await Promise.all(
      this.livePeers().map(async (peer) => {
        if (now < peer.quietUntil) {
          for (const { topic, shard, from } of shards) add(peer.pending, topic, shard, from);
          return;
        }
        await this.post(peer, JSON.stringify({ shards, at: now } satisfies WakeHints), shards);
      }),
    );
  }

  private send(peer: Peer): void {
    const shards: ShardRef[] = [];
    for (const [topic, set] of peer.pending) {
      for (const [shard, from] of set) {
        if (shards.length === MAX_WAKE_SHARDS) break;
        shards.push(from === undefined ? { topic, shard } : { topic, shard, from });
        set.delete(shard);
      }
      if (set.size === 0) peer.pending.delete(topic);
      if (shards.length === MAX_WAKE_SHARDS) break;
    }
    peer.inFlight = true;
    const body: WakeHints = { shards, at: Date.now() };
    void this.post(peer, JSON.stringify(body), shards).finally(() => {
      peer.inFlight = false;
      if (peer.pending.size > 0) this.schedule();
    });
  }

  private async post(peer: Peer, body: string, shards: readonly ShardRef[]): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.options.authorization) headers.authorization = this.options.authorization;
    let problem: string;
    let error: unknown;
    let undelivered = false;
    try {
      const response = await fetch(peer.endpoint, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      if (response.ok) {
        await response.body?.cancel();
        this.counts.sent += 1;
        this.options.metrics?.wakeHints.inc({ outcome: 'sent' });
        if (peer.failing) this.options.logger.info({ peer: peer.id }, 'wake hints reach the peer again');
        peer.failing = false;
        return;
      }
      undelivered = response.status >= 500;
      const text = await response.text().catch(() => '');
      problem =
        response.status === 401
          ? "the peer refused this worker's credentials: give every worker a common first rest.auth.* entry"
          : `the peer answered ${response.status} ${text.slice(0, 200)}`;
    } catch (caught) {
      if (this.stopped) return;
      error = caught;
      undelivered = true;
      problem = 'the peer could not be reached';
    }
    this.counts.failed += 1;
    this.options.metrics?.wakeHints.inc({ outcome: 'failed' });
    peer.quietUntil = Date.now() + this.failureBackoffMs;
    if (undelivered) {
      for (const { topic, shard, from } of shards) add(peer.pending, topic, shard, from);
      setTimeout(() => this.schedule(), this.failureBackoffMs).unref();
    } else {
      peer.pending.clear();
    }
    const fields = { peer: peer.id, url: peer.endpoint, problem, ...(error ? { err: error } : {}) };
    // Logged once per failing spell: a dead peer stays in the membership until its heartbeat expires.
    const outcome = undelivered ? 'sent again after the back-off' : 'its consumers fall back to polling';
    if (!peer.failing) this.options.logger.warn(fields, `wake hint to a peer failed; ${outcome}`);
    else this.options.logger.debug(fields, 'wake hint to a peer failed');
    peer.failing = true;
  }
}

/** Adds a pair to `pending`, keeping the earliest known stamp written to it. */
function add(pending: PendingShards, topic: string, shard: number, from: number | undefined): void {
  let shards = pending.get(topic);
  if (!shards) pending.set(topic, (shards = new Map()));
  const known = shards.get(shard);
  shards.set(shard, known === undefined ? from : from === undefined ? known : Math.min(known, from));
}

/** The control plane's credentials (the REST layer's AuthConfig has this shape). */
export interface PeerCredentials {
  bearerTokens: readonly string[];
  basicUsers: ReadonlyArray<{ user: string; password: string }>;
}

/** The Authorization header that lets this worker's hints pass its peers' auth (same settings cluster-wide). */
export function peerAuthorization(auth: PeerCredentials): string | undefined {
  const token = auth.bearerTokens[0];
  if (token) return `Bearer ${token}`;
  const user = auth.basicUsers[0];
  if (user) return `Basic ${Buffer.from(`${user.user}:${user.password}`).toString('base64')}`;
  return undefined;
}

const isTime = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a `POST /internal/wake` body; throws a 400 naming every bad item. Topics and shards
 * are checked for shape only: a hint about a topic or shard nobody here consumes is valid,
 * and ignored. Unknown fields are ignored (a newer worker may send more).
 */
export function parseWakeHints(body: unknown): WakeHints {
  if (!isObject(body) || !Array.isArray(body.shards)) {
    throw coreError('OMNI_ERR_BUS_WAKE_INVALID', { problem: 'Expected a JSON object {shards: [{topic, shard, from?}, …], at?}' });
  }
  if (body.shards.length > MAX_WAKE_SHARDS) {
    throw coreError('OMNI_ERR_BUS_WAKE_INVALID', { problem: `A wake hint names at most ${MAX_WAKE_SHARDS} shards; got ${body.shards.length}` });
  }
  const errors: Array<{ index?: number; field: string; message: string }> = [];
  const shards: ShardRef[] = [];
  body.shards.forEach((item: unknown, index) => {
    if (!isObject(item)) {
      errors.push({ index, field: '', message: 'must be an object {topic, shard}' });
      return;
    }
    const { topic, shard, from } = item;
    const before = errors.length;
    if (typeof topic !== 'string' || !TOPIC_NAME_PATTERN.test(topic)) {
      errors.push({ index, field: 'topic', message: 'must be a topic name (1 to 249 characters from [A-Za-z0-9._-])' });
    }
    if (typeof shard !== 'number' || !Number.isInteger(shard) || shard < 0 || shard >= MAX_SHARDS) {
      errors.push({ index, field: 'shard', message: `must be an integer from 0 to ${MAX_SHARDS - 1}` });
    }
    if (from !== undefined && !isTime(from)) errors.push({ index, field: 'from', message: 'must be a time in ms since the epoch' });
    if (errors.length === before) shards.push(from === undefined ? { topic: topic as string, shard: shard as number } : { topic: topic as string, shard: shard as number, from: from as number });
  });
  const at = body.at;
  if (at !== undefined && !isTime(at)) {
    errors.push({ field: 'at', message: 'must be a time in ms since the epoch' });
  }
  if (errors.length > 0) {
    throw coreError('OMNI_ERR_BUS_WAKE_INVALID', { problem: `${errors.length} problem(s) in the wake hint; nothing was woken` }, { errors });
  }
  return at === undefined ? { shards } : { shards, at: at as number };
}

/**
 * Wakes this worker's consumers of the hinted shards, as a local produce does (never passed on
 * to peers). When the sender's clock is ahead of ours, waits for ours to reach it (at most
 * {@link MAX_CLOCK_WAIT_MS}), so that the woken reads can see the entries.
 */
export function applyWakeHints(signals: ShardSignals | undefined, hints: WakeHints, now = Date.now()): void {
  if (!signals || hints.shards.length === 0) return;
  const wake = () => {
    for (const { topic, shard, from } of hints.shards) signals.notify(topic, shard, 'peer', from);
  };
  const ahead = hints.at === undefined ? 0 : hints.at - now;
  if (ahead <= 0) wake();
  else setTimeout(wake, Math.min(ahead, MAX_CLOCK_WAIT_MS) + 1).unref();
}
