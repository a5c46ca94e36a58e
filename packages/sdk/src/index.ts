export * from './errors.ts';
export * from './config.ts';
export * from './connector.ts';
export * from './values.ts';
export * from './version.ts';
export { checkWritablePath, writableDirs, WRITABLE_DIRS_ENV } from './files.ts';
export { startSink, startSource, memoryLogger, stableJson } from './testkit.ts';
export type { SinkHarness, SourceHarness, SentOutcome, TestMessage, LogLine } from './testkit.ts';
export * from './transforms.ts';
export * from './providers.ts';
export {
  smsSegments,
  encodeSegments,
  splitText,
  isGsm7,
  encodeGsm7,
  withConcatenationHeaders,
  DATA_CODING_GSM7,
  DATA_CODING_UCS2,
  SEGMENT_LIMITS,
  MAX_SEGMENTS,
  type SmsSegments,
  type TextEncoding,
  type SplitText,
  type EncodedSegments,
} from './sms-encoding.ts';
export * from './consent.ts';
