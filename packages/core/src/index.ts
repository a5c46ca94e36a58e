/**
 * The public surface of @omnibus/core, for embedding a worker (the `omnibus` command, tests,
 * benchmarks) and for tools that read or write the bus directly. Connector authors depend on
 * @omnibus/sdk only.
 */
export { Worker, type WorkerOptions } from './worker/worker.ts';
export { loadWorkerConfig, workerConfigSpec, type WorkerConfig } from './runtime/worker-config.ts';
export { commonConnectorSpec, fullSpec, maskSecrets } from './runtime/connector-config.ts';
export { parseProperties } from './runtime/config-providers.ts';
export { openStore } from './store/open.ts';
export type * from './store/port.ts';
export { token, tokenString, compositeToken } from './bus/token.ts';
export { shardOf, routeKey } from './bus/shard.ts';
export { FileSink } from './connectors/file-sink.ts';
export { CoreError, coreError, ERRORS, toHttpError, type ErrorCode } from './errors.ts';
export { Metrics } from './metrics.ts';
export { VERSION } from './version.ts';
