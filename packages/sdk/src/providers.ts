/**
 * Provider failover within a channel: a connector configured with several providers (SMTP
 * relays, SMPP binds, API accounts) sends each record through the first one whose circuit
 * breaker lets it, and moves on to the next only when the previous one certainly did not take
 * the message. A send whose fate is unknown (no answer after the message left) is never handed
 * to a second provider under at-most-once: resending it could deliver it twice.
 *
 * Config, after Kafka's `transforms`: `providers` names the providers in order of preference,
 * and `providers.<alias>.<key>` overrides the connector's own `<key>` for that provider (its
 * host, credentials, limits). Without `providers`, the connector's own keys are one provider
 * named `default`.
 */
import { ConfigSpec, validators, type RawConfig } from './config.ts';
import type { SinkOutcome } from './connector.ts';
import { ConfigError, isFatalConnectorError, type FatalConnectorError } from './errors.ts';

export const PROVIDERS_KEY = 'providers';
export const DEFAULT_PROVIDER = 'default';
const ALIAS_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Codes the chain itself gives outcomes. */
export const PROVIDER_ERROR_CODES = {
  /** Every provider's breaker is open: nothing was sent; retried after the first cool-down ends. */
  unavailable: 'OMNI_ERR_PROVIDERS_UNAVAILABLE',
  /** A provider may have the message (no answer after it left); under at-most-once it is not sent again. */
  inDoubt: 'OMNI_ERR_PROVIDER_IN_DOUBT',
} as const;

// ---------------------------------------------------------------------------------------------
// Circuit breaker
// ---------------------------------------------------------------------------------------------

export interface BreakerSettings {
  /** Opens after this many retriable failures in a row. */
  consecutiveFailures: number;
  /** Opens when the share of failures among the calls of the last `windowMs` exceeds this (0..1)… */
  failureRate: number;
  /** …counting only once the window holds at least this many calls. */
  minimumCalls: number;
  windowMs: number;
  /** How long an open breaker refuses calls before it lets one probe through (half-open). */
  coolDownMs: number;
}

export const DEFAULT_BREAKER_SETTINGS: Readonly<BreakerSettings> = {
  consecutiveFailures: 5,
  failureRate: 0.5,
  minimumCalls: 20,
  windowMs: 60_000,
  coolDownMs: 30_000,
};

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface Clock {
  now(): number;
}
const systemClock: Clock = { now: () => Date.now() };

/**
 * closed → open on `consecutiveFailures` failures in a row, or a failure rate over the window;
 * open → half-open once `coolDownMs` has passed, where one call at a time probes the provider;
 * half-open → closed on the probe's success, → open again (a new cool-down) on its failure.
 */
export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private consecutive = 0;
  private openedAt = 0;
  private probing = false;
  /** Call results of the window: [time, failed]. */
  private calls: Array<[number, boolean]> = [];
  private opened = 0;

  constructor(
    readonly settings: BreakerSettings = DEFAULT_BREAKER_SETTINGS,
    private readonly clock: Clock = systemClock,
  ) {}

  get state(): BreakerState {
    if (this.current === 'open' && this.clock.now() - this.openedAt >= this.settings.coolDownMs) this.current = 'half-open';
    return this.current;
  }

  /** How many times the breaker has opened. */
  get timesOpened(): number {
    return this.opened;
  }

  /** ms until an open breaker lets a probe through; 0 when it lets calls through now. */
  waitMs(): number {
    const state = this.state;
    if (state === 'closed') return 0;
    if (state === 'half-open') return this.probing ? this.settings.coolDownMs : 0;
    return Math.max(0, this.openedAt + this.settings.coolDownMs - this.clock.now());
  }

  /** Whether a call may go to the provider now; in half-open, only one at a time. Pair with success/failure/release. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** The provider answered (accepted, or refused the message itself: it works). */
  success(): void {
    this.probing = false;
    this.consecutive = 0;
    this.record(false);
    if (this.current === 'half-open') this.current = 'closed';
  }

  /** The provider failed (unreachable, throttling, 5xx, no answer). */
  failure(): void {
    this.probing = false;
    this.consecutive += 1;
    this.record(true);
    if (this.current === 'half-open' || this.shouldOpen()) this.open();
  }

  /** The call ended without saying anything about the provider (e.g. the record was invalid). */
  release(): void {
    this.probing = false;
  }

  /** Opens at once (credentials refused: nothing will work until the config changes or the cool-down ends). */
  open(): void {
    if (this.current !== 'open') this.opened += 1;
    this.current = 'open';
    this.openedAt = this.clock.now();
    this.consecutive = 0;
    this.calls = [];
  }

  failureRateNow(): number {
    this.trim();
    if (this.calls.length === 0) return 0;
    return this.calls.filter(([, failed]) => failed).length / this.calls.length;
  }

  private record(failed: boolean): void {
    this.calls.push([this.clock.now(), failed]);
    this.trim();
  }

  private trim(): void {
    const since = this.clock.now() - this.settings.windowMs;
    let drop = 0;
    while (drop < this.calls.length && (this.calls[drop] as [number, boolean])[0] < since) drop += 1;
    if (drop > 0) this.calls.splice(0, drop);
  }

  private shouldOpen(): boolean {
    if (this.consecutive >= this.settings.consecutiveFailures) return true;
    return this.calls.length >= this.settings.minimumCalls && this.failureRateNow() > this.settings.failureRate;
  }
}

// ---------------------------------------------------------------------------------------------
// The chain
// ---------------------------------------------------------------------------------------------

/**
 * What one provider did with a record:
 * - `taken`: it answered about the message (accepted it, or refused it for good): no failover.
 * - `not-taken`: it certainly does not have the message (connection refused, 4xx before the
 *   message was accepted, HTTP 429/5xx with no message id): the next provider may send it.
 * - `in-doubt`: the message left and no answer came (timeout after DATA, connection closed
 *   after submit_sm): the provider may have it.
 * - `skipped`: nothing to say about the provider (the record is invalid); no failover.
 */
export type ProviderAttempt =
  | { result: 'taken'; outcome: SinkOutcome }
  | { result: 'not-taken'; outcome: SinkOutcome }
  | { result: 'in-doubt'; outcome: SinkOutcome }
  | { result: 'skipped'; outcome: SinkOutcome };

export interface ProviderStatus {
  alias: string;
  state: BreakerState;
  /** Share of failures in the breaker's window (0..1). */
  failureRate: number;
  timesOpened: number;
  sent: number;
  failed: number;
}

export interface ProviderChainOptions {
  breaker?: Partial<BreakerSettings>;
  clock?: Clock;
  /** `delivery.guarantee=at-least-once`: a send in doubt may go again (to any provider). */
  atLeastOnce?: boolean;
  /**
   * Whether a provider recognises a message sent again by its stable id and drops the repeat
   * (an e-mail's Message-ID): then, under at-most-once, a single provider's send in doubt may
   * still be retried with it. Default true. A provider that takes every request as a new
   * message (the WhatsApp Cloud API) says false: its sends in doubt fail as in doubt.
   */
  providerDropsRepeats?: boolean;
  /**
   * Told after every send (for metrics and status): every provider's status, and whether a
   * breaker changed state since the last report.
   */
  report?(statuses: ProviderStatus[], stateChanged: boolean): void;
}

interface Entry<P> {
  alias: string;
  provider: P;
  breaker: CircuitBreaker;
  /** The fatal error this provider last threw (credentials refused); cleared when it works again. */
  fatal?: FatalConnectorError;
  sent: number;
  failed: number;
}

const withProvider = (outcome: SinkOutcome, alias: string): SinkOutcome =>
  outcome.status === 'retry' ? outcome : { ...outcome, details: { ...outcome.details, provider: alias } };

/** Sends through the first provider that takes a record, breaker permitting. */
export class ProviderChain<P> {
  private readonly entries: Array<Entry<P>>;
  private readonly atLeastOnce: boolean;
  private lastStates: string;

  constructor(
    providers: ReadonlyArray<{ alias: string; provider: P }>,
    private readonly options: ProviderChainOptions = {},
  ) {
    if (providers.length === 0) throw new Error('a provider chain needs at least one provider');
    const settings = { ...DEFAULT_BREAKER_SETTINGS, ...options.breaker };
    this.entries = providers.map(({ alias, provider }) => ({ alias, provider, breaker: new CircuitBreaker(settings, options.clock), sent: 0, failed: 0 }));
    this.atLeastOnce = options.atLeastOnce ?? false;
    this.lastStates = this.entries.map((e) => `${e.alias}:closed`).join(',');
  }

  get providers(): ReadonlyArray<{ alias: string; provider: P }> {
    return this.entries;
  }

  statuses(): ProviderStatus[] {
    return this.entries.map((e) => ({
      alias: e.alias,
      state: e.breaker.state,
      failureRate: e.breaker.failureRateNow(),
      timesOpened: e.breaker.timesOpened,
      sent: e.sent,
      failed: e.failed,
    }));
  }

  /**
   * Sends one record: `attempt` tries it on one provider. Throws {@link FatalConnectorError}
   * only when every provider threw one (nothing was sent anywhere).
   */
  async send(attempt: (provider: P, alias: string) => Promise<ProviderAttempt>): Promise<SinkOutcome> {
    let last: SinkOutcome | undefined;
    let fatal: FatalConnectorError | undefined;
    let allFatal = true;
    try {
      for (const entry of this.entries) {
        if (!entry.breaker.tryAcquire()) continue;
        let tried: ProviderAttempt;
        try {
          tried = await attempt(entry.provider, entry.alias);
        } catch (error) {
          if (!isFatalConnectorError(error)) {
            entry.breaker.release();
            throw error;
          }
          // This provider cannot work (credentials refused); the others may.
          entry.breaker.open();
          entry.failed += 1;
          entry.fatal = error;
          fatal ??= error;
          continue;
        }
        allFatal = false;
        entry.fatal = undefined;
        switch (tried.result) {
          case 'taken':
            entry.breaker.success();
            if (tried.outcome.status === 'sent') entry.sent += 1;
            else entry.failed += 1;
            return withProvider(tried.outcome, entry.alias);
          case 'skipped':
            entry.breaker.release();
            return withProvider(tried.outcome, entry.alias);
          case 'in-doubt':
            entry.breaker.failure();
            entry.failed += 1;
            return this.inDoubt(tried.outcome, entry.alias);
          case 'not-taken':
            entry.breaker.failure();
            entry.failed += 1;
            last = tried.outcome;
            continue;
        }
      }
    } finally {
      this.notify();
    }
    if (fatal && allFatal) throw fatal;
    if (last) return last;
    // Every provider is out because each refused our credentials: the connector cannot send at all.
    const refused = this.entries.map((e) => e.fatal);
    if (refused.every((f) => f !== undefined)) throw refused[0];
    const waitMs = Math.min(...this.entries.map((e) => e.breaker.waitMs()));
    return {
      status: 'retry',
      error: { code: PROVIDER_ERROR_CODES.unavailable, message: `every provider's circuit breaker is open (${this.entries.map((e) => e.alias).join(', ')})` },
      retryAfterMs: Math.max(1, waitMs),
    };
  }

  /**
   * A send in doubt stays with its provider. With a single provider that drops repeats, a retry
   * can only go back to it (the connector's stable ids let it drop a duplicate), so its outcome
   * stands; with several, or one that does not drop repeats, under at-most-once a retry could
   * send the message twice, so the record fails as in doubt.
   */
  private inDoubt(outcome: SinkOutcome, alias: string): SinkOutcome {
    const retryIsSafe = this.entries.length === 1 && (this.options.providerDropsRepeats ?? true);
    if (outcome.status !== 'retry' || this.atLeastOnce || retryIsSafe) return withProvider(outcome, alias);
    return {
      status: 'failed',
      error: { code: PROVIDER_ERROR_CODES.inDoubt, message: `${outcome.error.message}; provider "${alias}" may have accepted the message, so it is not sent again (delivery.guarantee=at-most-once)` },
      details: { inDoubt: true, provider: alias, cause: outcome.error.code },
    };
  }

  private notify(): void {
    if (!this.options.report) return;
    const statuses = this.statuses();
    const key = statuses.map((s) => `${s.alias}:${s.state}`).join(',');
    const changed = key !== this.lastStates;
    this.lastStates = key;
    this.options.report(statuses, changed);
  }
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/** The breaker keys every connector with providers accepts (merge into its spec). */
export const breakerConfigKeys = {
  consecutiveFailures: 'provider.breaker.consecutive.failures',
  failureRate: 'provider.breaker.failure.rate',
  minimumCalls: 'provider.breaker.minimum.calls',
  windowMs: 'provider.breaker.window.ms',
  coolDownMs: 'provider.breaker.cooldown.ms',
} as const;

const PROVIDERS_GROUP = 'Providers';

/**
 * The keys of a connector with providers: merge into its spec (`mySpec.merge(providerConfigSpec)`),
 * check `providerProblems` in its `validate`, and build its providers from `providerConfigs`.
 */
export const providerConfigSpec = ConfigSpec.builder()
  .list(PROVIDERS_KEY, {
    documentation:
      'Providers in order of preference, by alias (e.g. `primary,backup`). `providers.<alias>.<key>` sets any of this connector\'s keys for that provider only ' +
      '(its host, credentials, limits); keys it does not set are the connector\'s own. A message goes to the next provider only when the previous one certainly did not take it ' +
      '(refused connection, a 4xx reply, HTTP 429/5xx); a send in doubt stays with its provider. Unset: the connector\'s own keys are one provider named `default`.',
    optional: true,
    importance: 'MEDIUM',
    group: PROVIDERS_GROUP,
    displayName: 'Providers',
    width: 'LONG',
  })
  .int(breakerConfigKeys.consecutiveFailures, {
    documentation: "A provider's circuit breaker opens after this many failures in a row (refused connections, 4xx, 429/5xx, sends in doubt).",
    default: DEFAULT_BREAKER_SETTINGS.consecutiveFailures,
    importance: 'LOW',
    group: PROVIDERS_GROUP,
    validator: validators.range(1, 1_000_000),
  })
  .double(breakerConfigKeys.failureRate, {
    documentation: `It also opens when more than this share (0..1] of the calls of the last ${breakerConfigKeys.windowMs} failed, once there were ${breakerConfigKeys.minimumCalls} of them.`,
    default: DEFAULT_BREAKER_SETTINGS.failureRate,
    importance: 'LOW',
    group: PROVIDERS_GROUP,
    validator: validators.range(0.01, 1),
  })
  .int(breakerConfigKeys.minimumCalls, {
    documentation: 'Calls the window must hold before the failure rate counts.',
    default: DEFAULT_BREAKER_SETTINGS.minimumCalls,
    importance: 'LOW',
    group: PROVIDERS_GROUP,
    validator: validators.range(1, 1_000_000),
  })
  .long(breakerConfigKeys.windowMs, {
    documentation: 'The window (ms) over which the failure rate is measured.',
    default: DEFAULT_BREAKER_SETTINGS.windowMs,
    importance: 'LOW',
    group: PROVIDERS_GROUP,
    validator: validators.range(1_000, 3_600_000),
  })
  .long(breakerConfigKeys.coolDownMs, {
    documentation:
      'How long (ms) an open breaker keeps its provider out; then one message probes it (half-open): success closes the breaker, failure opens it for another cool-down.',
    default: DEFAULT_BREAKER_SETTINGS.coolDownMs,
    importance: 'LOW',
    group: PROVIDERS_GROUP,
    validator: validators.range(100, 3_600_000),
  });

/** The breaker settings a raw or parsed config gives, defaults for what it leaves out; problems by key. */
export function breakerSettingsOf(config: RawConfig): { settings: BreakerSettings; errors: Record<string, string[]> } {
  const settings = { ...DEFAULT_BREAKER_SETTINGS };
  const errors: Record<string, string[]> = {};
  for (const [field, key] of Object.entries(breakerConfigKeys) as Array<[keyof BreakerSettings, string]>) {
    const given = config[key];
    if (given === undefined || given === null || given === '') continue;
    const value = Number(given);
    const valid = field === 'failureRate' ? value > 0 && value <= 1 : Number.isInteger(value) && value >= 1;
    if (!Number.isFinite(value) || !valid) {
      errors[key] = [field === 'failureRate' ? 'must be a number in (0, 1]' : 'must be a whole number of at least 1'];
      continue;
    }
    settings[field] = value;
  }
  return { settings, errors };
}

/** The aliases `providers` names, in order; `[default]` when it is unset. */
export function providerAliasesOf(config: RawConfig): { aliases: string[]; errors: string[] } {
  const given = config[PROVIDERS_KEY];
  if (given === undefined || given === null || given === '') return { aliases: [DEFAULT_PROVIDER], errors: [] };
  const list = Array.isArray(given) ? given.map(String) : String(given).split(',');
  const aliases = list.map((a) => a.trim()).filter((a) => a !== '');
  const errors: string[] = [];
  if (aliases.length === 0) errors.push('providers must name at least one provider');
  const seen = new Set<string>();
  for (const alias of aliases) {
    if (!ALIAS_PATTERN.test(alias)) errors.push(`providers: "${alias}" is not a valid provider alias (letters, digits, "_" and "-")`);
    if (seen.has(alias)) errors.push(`providers names "${alias}" more than once`);
    seen.add(alias);
  }
  return { aliases, errors };
}

/** `providers.<alias>.<key>` → `<key>` when `key` belongs to `alias`. */
export function providerKeyOf(name: string): { alias: string; key: string } | undefined {
  const match = /^providers\.([A-Za-z0-9_-]+)\.(.+)$/.exec(name);
  return match ? { alias: match[1] as string, key: match[2] as string } : undefined;
}

/**
 * Each provider's config: the connector's raw config with that provider's
 * `providers.<alias>.*` keys laid over it, parsed with `spec`. Throws a {@link ConfigError}
 * naming the full keys (`providers.b.smtp.host`) of every problem.
 */
export function providerConfigs<C>(spec: ConfigSpec<C>, raw: RawConfig): Array<{ alias: string; config: C }> {
  const problems = providerProblems(spec, raw);
  if (Object.keys(problems).length > 0) throw new ConfigError(problems);
  return providerAliasesOf(raw).aliases.map((alias) => ({ alias, config: spec.parse(providerRaw(raw, alias)) }));
}

/** Problems of the `providers` keys, by full key; empty when the config is fine. */
export function providerProblems<C>(spec: ConfigSpec<C>, raw: RawConfig): Record<string, string[]> {
  const problems: Record<string, string[]> = {};
  const { aliases, errors } = providerAliasesOf(raw);
  if (errors.length > 0) return { [PROVIDERS_KEY]: errors };
  // A spec that declares the breaker keys checks them itself.
  if (!spec.key(breakerConfigKeys.failureRate)) Object.assign(problems, breakerSettingsOf(raw).errors);
  const known = new Set(aliases);
  for (const name of Object.keys(raw)) {
    const owned = providerKeyOf(name);
    if (!owned || raw[name] === undefined || raw[name] === null) continue;
    if (!known.has(owned.alias)) (problems[name] ??= []).push(`${name}: provider "${owned.alias}" is not named in providers`);
    else if (!spec.key(owned.key)) (problems[name] ??= []).push(`${name}: "${owned.key}" is not a setting of this connector`);
  }
  if (Object.keys(problems).length > 0) return problems;
  for (const alias of aliases) {
    try {
      spec.parse(providerRaw(raw, alias));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const [key, list] of Object.entries(error.errors)) {
        const full = raw[`providers.${alias}.${key}`] !== undefined || alias !== DEFAULT_PROVIDER ? `providers.${alias}.${key}` : key;
        problems[full] = list;
      }
    }
  }
  return problems;
}

function providerRaw(raw: RawConfig, alias: string): RawConfig {
  const own: RawConfig = {};
  const prefix = `providers.${alias}.`;
  for (const [name, value] of Object.entries(raw)) {
    if (name.startsWith(prefix) && value !== undefined && value !== null) own[name.slice(prefix.length)] = value;
  }
  const base = Object.fromEntries(Object.entries(raw).filter(([name]) => !providerKeyOf(name)));
  return { ...base, ...own };
}
