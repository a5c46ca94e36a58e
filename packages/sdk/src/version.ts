/**
 * The version of the contract between connectors and the runtime (the interfaces, outcomes,
 * errors and brands of this package), as `major.minor`. It moves on its own, not with the
 * package's version: the major changes when a connector built for the old contract would
 * misbehave in a runtime of the new one (or the reverse), the minor when something is added.
 *
 * `defineSinkConnector` and `defineSourceConnector` stamp it on the connector they return, so
 * a connector carries the contract it was built for wherever it is installed; the runtime
 * refuses at load a connector built for another major.
 *
 * 1.1 added transformations and predicates (`defineTransformation`, `definePredicate`).
 */
export const SDK_API_VERSION = '1.1';

/** The key (registered, so shared by every copy of the SDK) under which a connector carries its SDK API version. */
export const SDK_API_VERSION_KEY: unique symbol = Symbol.for('omnibus.sdk.apiVersion');

/** The SDK API version a connector was built for, or undefined when it does not say (a hand-written object). */
export function sdkApiVersionOf(connector: unknown): string | undefined {
  if (connector === null || typeof connector !== 'object') return undefined;
  const version = (connector as Record<symbol, unknown>)[SDK_API_VERSION_KEY];
  return typeof version === 'string' ? version : undefined;
}

/**
 * Why a connector built for SDK API `connectorVersion` cannot run on a runtime of
 * `runtimeVersion` (this copy's, by default), or undefined when it can: the majors must be
 * equal. Minors of one major only add optional parts to the contract, so they mix.
 */
export function sdkApiIncompatibility(connectorVersion: string, runtimeVersion: string = SDK_API_VERSION): string | undefined {
  const major = (version: string): number | undefined => {
    const match = /^(\d+)(?:\.\d+)*$/.exec(version.trim());
    return match ? Number(match[1]) : undefined;
  };
  const connectorMajor = major(connectorVersion);
  const runtimeMajor = major(runtimeVersion);
  if (connectorMajor === undefined) {
    return `it declares SDK API version "${connectorVersion}", which is not a version; this runtime implements SDK API ${runtimeVersion}`;
  }
  if (connectorMajor !== runtimeMajor) {
    return `it was built for SDK API ${connectorVersion} and this runtime implements SDK API ${runtimeVersion} (the majors must match)`;
  }
  return undefined;
}
