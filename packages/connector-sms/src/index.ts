export { SmsSink } from './sink.ts';
export { smsValueSchema, type SmsValue } from './value.ts';
export { smsConfigSpec, type SmsConfig } from './config.ts';
export { SmsErrorCode } from './errors.ts';
// The encoder lives in @omnibus/sdk (runtimes count a template's segments with it); re-exported for existing users.
export { encodeSegments, splitText, isGsm7, type EncodedSegments, type SplitText } from '@omnibus/sdk';
export { parseReceipt, type Receipt, type ReceiptStat } from './receipt.ts';
export { twilioSignature, verifyTwilioSignature } from './twilio/signature.ts';
