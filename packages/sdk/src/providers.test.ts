import { describe, expect, it } from 'vitest';
import { ConfigSpec, validators } from './config.ts';
import type { SinkOutcome } from './connector.ts';
import { ConfigError, FatalConnectorError } from './errors.ts';
import {
  CircuitBreaker,
  PROVIDER_ERROR_CODES,
  ProviderChain,
  providerConfigs,
  providerProblems,
  type ProviderAttempt,
  type ProviderStatus,
} from './providers.ts';

class FakeClock {
  time = 1_000_000;
  now = () => this.time;
  advance(ms: number) {
    this.time += ms;
  }
}

const settings = { consecutiveFailures: 3, failureRate: 0.5, minimumCalls: 10, windowMs: 10_000, coolDownMs: 5_000 };
const sent: SinkOutcome = { status: 'sent', providerId: 'p-1' };
const refused: SinkOutcome = { status: 'retry', error: { code: 'X_CONNECTION', message: 'connection refused' } };

describe('CircuitBreaker', () => {
  it('opens on consecutive failures, half-opens after the cool-down, closes on a successful probe', () => {
    const clock = new FakeClock();
    const breaker = new CircuitBreaker(settings, clock);
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.waitMs()).toBe(5_000);

    clock.advance(4_999);
    expect(breaker.state).toBe('open');
    clock.advance(1);
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    // One probe at a time.
    expect(breaker.tryAcquire()).toBe(false);
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.timesOpened).toBe(1);
  });

  it('opens again for a full cool-down when the probe fails', () => {
    const clock = new FakeClock();
    const breaker = new CircuitBreaker(settings, clock);
    breaker.open();
    clock.advance(5_000);
    expect(breaker.tryAcquire()).toBe(true);
    breaker.failure();
    expect(breaker.state).toBe('open');
    clock.advance(4_000);
    expect(breaker.state).toBe('open');
    clock.advance(1_000);
    expect(breaker.state).toBe('half-open');
  });

  it('opens on a failure rate over the window once it holds the minimum calls, never before', () => {
    const clock = new FakeClock();
    const breaker = new CircuitBreaker(settings, clock);
    // Alternating results never make three failures in a row; 5 of 9 is over 50 % but under the minimum.
    for (let i = 0; i < 9; i += 1) {
      if (i % 2 === 0) breaker.failure();
      else breaker.success();
    }
    expect(breaker.state).toBe('closed');
    breaker.failure(); // 6 of 10 failed
    expect(breaker.state).toBe('open');
  });

  it('forgets calls older than the window', () => {
    const clock = new FakeClock();
    const breaker = new CircuitBreaker(settings, clock);
    for (let i = 0; i < 8; i += 1) {
      if (i % 2 === 0) breaker.failure();
      else breaker.success();
    }
    clock.advance(10_001);
    for (let i = 0; i < 4; i += 1) {
      if (i % 2 === 0) breaker.success();
      else breaker.failure();
    }
    expect(breaker.failureRateNow()).toBe(0.5);
    expect(breaker.state).toBe('closed');
  });
});

describe('ProviderChain', () => {
  const chainOf = (clock: FakeClock, options: { atLeastOnce?: boolean; report?: (s: ProviderStatus[], changed: boolean) => void } = {}) =>
    new ProviderChain(
      [
        { alias: 'a', provider: 'A' },
        { alias: 'b', provider: 'B' },
      ],
      { breaker: settings, clock, ...options },
    );

  it('fails over to the next provider only when the previous one did not take the message, and names the provider used', async () => {
    const clock = new FakeClock();
    const chain = chainOf(clock);
    const calls: string[] = [];
    const outcome = await chain.send(async (provider) => {
      calls.push(provider);
      return provider === 'A' ? { result: 'not-taken', outcome: refused } : { result: 'taken', outcome: sent };
    });
    expect(calls).toEqual(['A', 'B']);
    expect(outcome).toEqual({ status: 'sent', providerId: 'p-1', details: { provider: 'b' } });
  });

  it('does not fail over on a permanent refusal of the message', async () => {
    const chain = chainOf(new FakeClock());
    const calls: string[] = [];
    const failed: SinkOutcome = { status: 'failed', error: { code: 'X_REJECTED', message: '550 5.1.1 user unknown' } };
    const outcome = await chain.send(async (provider) => {
      calls.push(provider);
      return { result: 'taken', outcome: failed };
    });
    expect(calls).toEqual(['A']);
    expect(outcome).toMatchObject({ status: 'failed', details: { provider: 'a' } });
    expect(chain.statuses()[0]).toMatchObject({ state: 'closed', failed: 1 });
  });

  it('never hands a send in doubt to a second provider; under at-most-once it fails as in doubt', async () => {
    const chain = chainOf(new FakeClock());
    const calls: string[] = [];
    const attempt = async (provider: string): Promise<ProviderAttempt> => {
      calls.push(provider);
      return { result: 'in-doubt', outcome: { status: 'retry', error: { code: 'X_TIMEOUT', message: 'no reply after DATA' } } };
    };
    const outcome = await chain.send(attempt);
    expect(calls).toEqual(['A']);
    expect(outcome).toMatchObject({ status: 'failed', error: { code: PROVIDER_ERROR_CODES.inDoubt }, details: { inDoubt: true, provider: 'a' } });

    const atLeastOnce = chainOf(new FakeClock(), { atLeastOnce: true });
    calls.length = 0;
    expect(await atLeastOnce.send(attempt)).toMatchObject({ status: 'retry', error: { code: 'X_TIMEOUT' } });
    expect(calls).toEqual(['A']);
  });

  it('keeps a single provider\'s in-doubt outcome as the connector gave it (a retry can only go back to it)', async () => {
    const chain = new ProviderChain([{ alias: 'default', provider: 'A' }], { breaker: settings, clock: new FakeClock() });
    const outcome = await chain.send(async () => ({ result: 'in-doubt', outcome: refused }));
    expect(outcome).toEqual(refused);
  });

  it('skips a provider whose breaker is open, returns to it after a successful probe, and reports state changes', async () => {
    const clock = new FakeClock();
    const changes: string[] = [];
    const chain = chainOf(clock, { report: (s, changed) => void (changed && changes.push(s.map((p) => `${p.alias}=${p.state}`).join(' '))) });
    let aDown = true;
    const used: string[] = [];
    const attempt = async (provider: string): Promise<ProviderAttempt> => {
      used.push(provider);
      if (provider === 'A' && aDown) return { result: 'not-taken', outcome: refused };
      return { result: 'taken', outcome: sent };
    };
    for (let i = 0; i < 3; i += 1) await chain.send(attempt);
    expect(used).toEqual(['A', 'B', 'A', 'B', 'A', 'B']);
    expect(chain.statuses().map((s) => s.state)).toEqual(['open', 'closed']);

    used.length = 0;
    await chain.send(attempt);
    expect(used).toEqual(['B']);

    aDown = false;
    clock.advance(5_000);
    used.length = 0;
    const probe = await chain.send(attempt);
    expect(used).toEqual(['A']);
    expect(probe).toMatchObject({ details: { provider: 'a' } });
    expect(chain.statuses().map((s) => s.state)).toEqual(['closed', 'closed']);
    expect(changes).toEqual(['a=open b=closed', 'a=closed b=closed']);
  });

  it('asks for a retry after the shortest cool-down when every breaker is open, without calling any provider', async () => {
    const clock = new FakeClock();
    const chain = chainOf(clock);
    for (let i = 0; i < 3; i += 1) await chain.send(async () => ({ result: 'not-taken', outcome: refused }));
    clock.advance(2_000);
    let called = false;
    const outcome = await chain.send(async () => {
      called = true;
      return { result: 'taken', outcome: sent };
    });
    expect(called).toBe(false);
    expect(outcome).toMatchObject({ status: 'retry', error: { code: PROVIDER_ERROR_CODES.unavailable }, retryAfterMs: 3_000 });
  });

  it('moves past a provider whose credentials are refused, and throws only when every provider did', async () => {
    const chain = chainOf(new FakeClock());
    const outcome = await chain.send(async (provider) => {
      if (provider === 'A') throw new FatalConnectorError('X_AUTH', 'auth refused');
      return { result: 'taken', outcome: sent };
    });
    expect(outcome).toMatchObject({ status: 'sent', details: { provider: 'b' } });
    expect(chain.statuses()[0]?.state).toBe('open');

    const broken = chainOf(new FakeClock());
    await expect(broken.send(async () => Promise.reject(new FatalConnectorError('X_AUTH', 'auth refused')))).rejects.toThrow('auth refused');
    // Later sends, with every breaker open on refused credentials, say so again rather than "retry later".
    await expect(broken.send(async () => ({ result: 'taken', outcome: sent }))).rejects.toThrow('auth refused');
  });
});

describe('provider configs', () => {
  const spec = ConfigSpec.builder()
    .string('host', { documentation: 'host', validator: validators.nonEmptyString() })
    .int('port', { documentation: 'port', default: 25, validator: validators.range(1, 65535) })
    .password('secret', { documentation: 'secret', optional: true });

  it('is the connector\'s own keys as provider "default" when providers is unset', () => {
    expect(providerConfigs(spec, { host: 'h', port: '26' })).toEqual([{ alias: 'default', config: { host: 'h', port: 26 } }]);
  });

  it('lays each provider\'s keys over the connector\'s, in the order named', () => {
    const configs = providerConfigs(spec, { providers: 'b, a', host: 'shared', 'providers.a.port': '2525', 'providers.b.host': 'other' });
    expect(configs).toEqual([
      { alias: 'b', config: { host: 'other', port: 25, providers: 'b, a' } },
      { alias: 'a', config: { host: 'shared', port: 2525, providers: 'b, a' } },
    ]);
  });

  it('names the full key of every problem: duplicates, unknown aliases or settings, bad values', () => {
    expect(providerProblems(spec, { providers: 'a,a', host: 'h' })).toEqual({ providers: ['providers names "a" more than once'] });
    expect(providerProblems(spec, { providers: 'a', host: 'h', 'providers.z.host': 'x', 'providers.a.colour': 'red' })).toEqual({
      'providers.z.host': ['providers.z.host: provider "z" is not named in providers'],
      'providers.a.colour': ['providers.a.colour: "colour" is not a setting of this connector'],
    });
    expect(Object.keys(providerProblems(spec, { providers: 'a,b', host: 'h', 'providers.b.port': '0' }))).toEqual(['providers.b.port']);
    expect(providerProblems(spec, { host: 'h', 'provider.breaker.failure.rate': '2' })).toEqual({
      'provider.breaker.failure.rate': ['must be a number in (0, 1]'],
    });
    expect(() => providerConfigs(spec, { providers: 'a,a', host: 'h' })).toThrow(ConfigError);
  });

  it('treats a provider\'s copy of a secret key as a secret', () => {
    expect(spec.isSecret('providers.b.secret')).toBe(true);
    expect(spec.isSecret('providers.b.host')).toBe(false);
  });
});
