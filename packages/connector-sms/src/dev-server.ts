/**
 * Development doubles of the providers SmsSink talks to, for demos, benchmarks and tests:
 * an SMSC (SMPP 3.4, with delivery receipts) and an emulator of Twilio's Messages API (with
 * signed status callbacks). Both listen on 127.0.0.1 and count what they receive, so that
 * exactly-once delivery can be checked end to end.
 */
export { startSmscDevServer, type SmscDevServer, type SmscDevServerOptions, type SmscSubmit, type SmscMessage, type SmscBind, type ReceivedSubmit } from './dev/smsc.ts';
export {
  startTwilioDevServer,
  type TwilioDevServer,
  type TwilioDevServerOptions,
  type TwilioMessage,
  type TwilioScriptedError,
  type TwilioCallback,
  type TwilioCallbackStatus,
} from './dev/twilio.ts';
