/**
 * The public surface of @omnibus/core, for embedding a worker (tests, demos, benchmarks) and
 * for tools that read or write the bus directly. Connector authors depend on @omnibus/sdk only.
 */
export { Worker } from './worker/worker.ts';
export { loadWorkerConfig, workerConfigSpec, type WorkerConfig } from './runtime/worker-config.ts';
export { commonConnectorSpec, fullSpec, maskSecrets } from './runtime/connector-config.ts';
export { openStore } from './store/open.ts';
export type * from './store/port.ts';
export { token, tokenString, compositeToken } from './bus/token.ts';
export { shardOf, routeKey } from './bus/shard.ts';
export { FileSink } from './connectors/file-sink.ts';
export { CoreError, coreError, ERRORS, toHttpError, type ErrorCode } from './errors.ts';
export { Metrics } from './metrics.ts';
export { VERSION } from './version.ts';
