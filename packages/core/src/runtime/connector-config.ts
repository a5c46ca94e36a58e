/**
 * The keys every connector has (bus/connector-config.ts: the bus runs what they configure),
 * and how a connector's config is shown: secrets masked.
 */
import { Password, type ConfigSpec as Spec } from '@omnibus/sdk';
import { commonConnectorSpec } from '../bus/connector-config.ts';

export { commonConnectorSpec, fullSpec, type CommonConnectorConfig } from '../bus/connector-config.ts';

/** A copy of `config` safe to return from a GET: every secret-typed value replaced by `[hidden]`. */
export function maskSecrets(config: Record<string, string>, ...specs: Array<Spec<unknown> | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, isSecretKey(key, ...specs) ? HIDDEN : value]));
}

/** What a response shows in place of a secret, and what a client sends back to keep the stored one. */
export const HIDDEN = Password.HIDDEN;

/**
 * Names that look secret. The spec decides for the keys it declares; this pattern decides for
 * the rest (a key the class does not declare, or a connector whose plugin is not installed).
 */
export const SECRET_LOOKING_KEY = /(password|passwd|secret|token|credential|api[._-]?key|private[._-]?key|auth)/i;

/**
 * Keys that say where, or how safely, a connector sends what it sends: a secret stored for one
 * endpoint must never go to another. Any dot-separated segment counts, so `smtp.tls.reject.unauthorized`
 * (a downgrade) and `twilio.status.callback.url` do too.
 */
export const ENDPOINT_LIKE_KEY = /(^|\.)(url|uri|host|hosts|port|endpoint|address|addresses|proxy|transport|secure|starttls|ssl|tls)(\.|$)/i;

/**
 * True when `key` holds a secret under any of `specs` (the class before and after a change), or,
 * where none of them declares it, when its name looks secret.
 */
export function isSecretKey(key: string, ...specs: Array<Spec<unknown> | undefined>): boolean {
  const known = specs.filter((s): s is Spec<unknown> => s !== undefined);
  if (known.some((s) => s.isSecret(key))) return true;
  if (known.some((s) => s.key(key) !== undefined) || commonConnectorSpec.key(key) !== undefined) return false;
  return SECRET_LOOKING_KEY.test(key);
}

/**
 * Why a stored secret may not follow a change from `before` to `after`: the class changed, or
 * an endpoint-like key did (set, changed or removed). Empty when the secrets may stay.
 */
export function endpointChanges(before: Readonly<Record<string, string | null>>, after: Readonly<Record<string, string | null>>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((key) => (key === 'connector.class' || ENDPOINT_LIKE_KEY.test(key)) && (before[key] ?? undefined) !== (after[key] ?? undefined));
}
