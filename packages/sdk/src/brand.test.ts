import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSdkCopy, type SdkCopy } from '../../../scripts/test-support/src/sdk-copy.ts';
import * as sdk from './index.ts';

// A plugin installed with its own npm copy of the SDK: same code, other classes.
let copy: SdkCopy;
let other: SdkCopy['sdk'];
beforeAll(async () => {
  copy = await loadSdkCopy();
  other = copy.sdk;
});
afterAll(() => copy?.remove());

describe('values of another copy of the SDK', () => {
  it('are really of other classes (so the checks below are not trivially true)', () => {
    expect(other.FatalConnectorError).not.toBe(sdk.FatalConnectorError);
    expect(other.Password).not.toBe(sdk.Password);
    expect(other.ConfigSpec).not.toBe(sdk.ConfigSpec);
    expect(Object.getPrototypeOf(new other.RetriableError('x'))).not.toBe(sdk.RetriableError.prototype);
  });

  it('are recognised by kind, through the guards and through instanceof', () => {
    const fatal = new other.FatalConnectorError('OMNI_ERR_TEST_REVOKED', 'credentials revoked');
    const retriable = new other.RetriableError('try later', { retryAfterMs: 250 });
    const permanent = new other.PermanentError('OMNI_ERR_TEST_INVALID', 'no such recipient');
    const config = new other.ConfigError({ 'smtp.host': ['Missing'] });

    expect(sdk.isFatalConnectorError(fatal)).toBe(true);
    expect(fatal instanceof sdk.FatalConnectorError).toBe(true);
    expect(sdk.isRetriable(retriable)).toBe(true);
    expect(retriable instanceof sdk.RetriableError).toBe(true);
    expect(sdk.isPermanent(permanent)).toBe(true);
    expect(permanent instanceof sdk.PermanentError).toBe(true);
    expect(sdk.isConfigError(config)).toBe(true);
    expect(config instanceof sdk.ConfigError).toBe(true);
    for (const error of [fatal, retriable, permanent, config]) {
      expect(sdk.isOmnibusError(error)).toBe(true);
      expect(error instanceof sdk.OmnibusError).toBe(true);
    }

    // Each kind is only itself.
    expect(sdk.isFatalConnectorError(retriable)).toBe(false);
    expect(retriable instanceof sdk.FatalConnectorError).toBe(false);
    expect(sdk.isRetriable(fatal)).toBe(false);
    expect(sdk.isPermanent(config)).toBe(false);
    expect(sdk.isConfigError(permanent)).toBe(false);
    expect(sdk.isFatalConnectorError(new Error('plain'))).toBe(false);
    expect(new Error('plain') instanceof sdk.OmnibusError).toBe(false);
    for (const value of [undefined, null, 'FatalConnectorError', 42, { code: 'OMNI_ERR_X', name: 'FatalConnectorError' }]) {
      expect(sdk.isFatalConnectorError(value)).toBe(false);
      expect(value instanceof sdk.FatalConnectorError).toBe(false);
    }
  });

  it('answer the other way round too: this copy\'s errors are recognised by the other copy', () => {
    expect(new sdk.FatalConnectorError('C', 'm') instanceof other.FatalConnectorError).toBe(true);
    expect(other.isRetriable(new sdk.RetriableError('m'))).toBe(true);
    expect(other.isPassword(new sdk.Password('s'))).toBe(true);
  });

  it('Password: recognised as a secret, still printed hidden, its value reachable', () => {
    const secret = new other.Password('hunter2');
    expect(sdk.isPassword(secret)).toBe(true);
    expect(secret instanceof sdk.Password).toBe(true);
    expect(secret.value()).toBe('hunter2');
    expect([String(secret), JSON.stringify({ secret }), inspect(secret)].join(' ')).not.toContain('hunter2');
    expect(sdk.isPassword('hunter2')).toBe(false);
    // A Password of the other copy given to this copy's spec is kept as the secret it is.
    const spec = sdk.ConfigSpec.builder().password('token', { documentation: 'API token.' });
    expect(spec.parse({ token: secret }).token).toBe(secret);
  });

  it('ConfigSpec: recognised, and merged and parsed by this copy (secrets become this copy\'s Password)', () => {
    const pluginSpec = other.ConfigSpec.builder()
      .string('api.url', { documentation: 'Endpoint.', validator: other.validators.url() })
      .password('api.token', { documentation: 'Token.' })
      .int('batch', { documentation: 'Batch size.', default: 10 });
    expect(sdk.isConfigSpec(pluginSpec)).toBe(true);
    expect(pluginSpec instanceof sdk.ConfigSpec).toBe(true);
    expect(sdk.isConfigSpec({ keys: 'not a list' })).toBe(false);

    const full = sdk.ConfigSpec.builder().string('name', { documentation: 'Name.' }).merge(pluginSpec);
    expect(full.isSecret('api.token')).toBe(true);
    const parsed = full.parse({ name: 'n', 'api.url': 'https://example.org', 'api.token': 'tok-123' }) as Record<string, unknown>;
    expect(parsed['api.token']).toBeInstanceOf(sdk.Password);
    expect(parsed.batch).toBe(10);
    // The other copy's parse throws its own ConfigError; this copy recognises it.
    const thrown = (() => {
      try {
        pluginSpec.parse({ 'api.url': 'ftp://nope' });
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(sdk.isConfigError(thrown)).toBe(true);
    expect((thrown as sdk.ConfigError).errors).toHaveProperty('api.url');
    expect((thrown as sdk.ConfigError).errors).toHaveProperty('api.token');
  });
});

describe('instanceof on subclasses', () => {
  it('a subclass declared by a connector keeps the ordinary answer, and its instances keep the base kind', () => {
    class ThrottledError extends other.RetriableError {}
    class QuotaError extends sdk.RetriableError {}
    const throttled = new ThrottledError('slow down');
    expect(throttled instanceof ThrottledError).toBe(true);
    expect(new other.RetriableError('x') instanceof ThrottledError).toBe(false);
    expect(new sdk.RetriableError('x') instanceof QuotaError).toBe(false);
    expect(throttled instanceof QuotaError).toBe(false);
    expect(throttled instanceof sdk.RetriableError).toBe(true);
    expect(sdk.isRetriable(throttled)).toBe(true);
    expect(throttled.name).toBe('ThrottledError');
  });
});

describe('SDK API version', () => {
  it('is stamped on connectors by the define helpers, whichever copy made them', () => {
    const sink = other.defineSinkConnector({
      className: 'S',
      version: '1.0.0',
      description: 'd',
      config: other.ConfigSpec.builder(),
      createTask: () => ({ start: async () => undefined, put: async () => [], stop: async () => undefined }),
    });
    const source = sdk.defineSourceConnector({
      className: 'R',
      version: '1.0.0',
      description: 'd',
      config: sdk.ConfigSpec.builder(),
      createTask: () => ({ start: async () => undefined, poll: async () => [], stop: async () => undefined }),
    });
    expect(sdk.sdkApiVersionOf(sink)).toBe(other.SDK_API_VERSION);
    expect(sdk.sdkApiVersionOf(source)).toBe(sdk.SDK_API_VERSION);
    expect(sdk.sdkApiVersionOf({ type: 'sink', className: 'Hand' })).toBeUndefined();
    expect(JSON.stringify(sink)).not.toContain('apiVersion');
  });

  it('accepts any minor of the same major, and names both versions when the majors differ', () => {
    expect(sdk.sdkApiIncompatibility('1.0', '1.0')).toBeUndefined();
    expect(sdk.sdkApiIncompatibility('1.4', '1.0')).toBeUndefined();
    expect(sdk.sdkApiIncompatibility('1', '1.3')).toBeUndefined();
    const newer = sdk.sdkApiIncompatibility('2.0', '1.3');
    expect(newer).toContain('2.0');
    expect(newer).toContain('1.3');
    expect(sdk.sdkApiIncompatibility('0.9', '1.0')).toMatch(/0\.9.*1\.0/);
    expect(sdk.sdkApiIncompatibility('banana', '1.0')).toContain('banana');
    expect(sdk.sdkApiIncompatibility('3.1')).toContain(sdk.SDK_API_VERSION);
  });
});
