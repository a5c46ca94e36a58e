export { SmsSink } from './sink.ts';
export { smsValueSchema, type SmsValue } from './value.ts';
export { smsConfigSpec, type SmsConfig } from './config.ts';
export { SmsErrorCode } from './errors.ts';
export { encodeSegments, splitText, isGsm7, type EncodedSegments, type SplitText } from './encoding.ts';
export { parseReceipt, type Receipt, type ReceiptStat } from './receipt.ts';
export { twilioSignature, verifyTwilioSignature } from './twilio/signature.ts';
