/**
 * The keys every connector has (bus/connector-config.ts: the bus runs what they configure),
 * and how a connector's config is shown: secrets masked.
 */
import type { ConfigSpec as Spec } from '@omnibus/sdk';

export { commonConnectorSpec, fullSpec, type CommonConnectorConfig } from '../bus/connector-config.ts';

/** A copy of `config` safe to return from a GET: every secret-typed value replaced by `[hidden]`. */
export function maskSecrets(config: Record<string, string>, spec: Spec<unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, spec.isSecret(key) ? '[hidden]' : value]));
}
