export * from './errors.ts';
export * from './config.ts';
export * from './connector.ts';
export * from './values.ts';
export * from './version.ts';
export { checkWritablePath, writableDirs, WRITABLE_DIRS_ENV } from './files.ts';
export { startSink, startSource, memoryLogger, stableJson } from './testkit.ts';
export type { SinkHarness, SourceHarness, SentOutcome, TestMessage, LogLine } from './testkit.ts';
export * from './transforms.ts';
