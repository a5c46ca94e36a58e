import { describe, expect, it } from 'vitest';
import { canonicalId, parseReceipt, parseReceiptDate, receiptKeyOfSubmitted } from './receipt.ts';

describe('delivery receipt text', () => {
  it('reads the SMPP 3.4 Appendix B format', () => {
    const receipt = parseReceipt('id:0123456789 sub:001 dlvrd:001 submit date:2511211530 done date:2511211531 stat:DELIVRD err:000 Text:Hello');
    expect(receipt).toEqual({
      messageId: '0123456789',
      stat: 'DELIVRD',
      outcome: 'delivered',
      error: '000',
      doneAt: Date.UTC(2025, 10, 21, 15, 31),
    });
  });

  it('classifies final failures and leaves intermediate states open', () => {
    expect(parseReceipt('id:a stat:UNDELIV err:001')?.outcome).toBe('failed');
    expect(parseReceipt('id:a stat:EXPIRED err:000')?.outcome).toBe('failed');
    expect(parseReceipt('id:a stat:REJECTD')?.outcome).toBe('failed');
    expect(parseReceipt('id:a stat:ACCEPTD')?.outcome).toBeUndefined();
    expect(parseReceipt('id:a stat:ENROUTE')?.outcome).toBeUndefined();
  });

  it('accepts lower case fields and dates with seconds', () => {
    const receipt = parseReceipt('id:abc sub:001 dlvrd:001 submit date:251121153000 done date:251121153142 stat:delivrd err:0');
    expect(receipt?.stat).toBe('DELIVRD');
    expect(receipt?.doneAt).toBe(Date.UTC(2025, 10, 21, 15, 31, 42));
  });

  it('does not read "submit date" as the done date', () => {
    expect(parseReceipt('id:x submit date:2501010000 stat:DELIVRD')?.doneAt).toBeUndefined();
  });

  it('prefers the receipted_message_id and message_state TLVs', () => {
    const receipt = parseReceipt('id:999 stat:DELIVRD', { receiptedMessageId: 'f00d', messageState: 5 });
    expect(receipt).toMatchObject({ messageId: 'f00d', stat: 'UNDELIV', outcome: 'failed' });
  });

  it('refuses text that names no id or no state', () => {
    expect(parseReceipt('hello there')).toBeUndefined();
    expect(parseReceipt('id:123 stat:WHATEVER')).toBeUndefined();
    expect(parseReceiptDate('2513991200')).toBeUndefined();
  });
});

describe('receipt id matching', () => {
  it('ignores case and leading zeros', () => {
    expect(canonicalId('000A1F')).toBe('a1f');
    expect(canonicalId('0')).toBe('0');
  });

  it('converts between hex and decimal when the SMSC does', () => {
    expect(receiptKeyOfSubmitted('0000000a1f', 'hex-to-decimal')).toBe('2591');
    expect(receiptKeyOfSubmitted('2591', 'decimal-to-hex')).toBe('a1f');
    expect(receiptKeyOfSubmitted('0A1F', 'none')).toBe('a1f');
    expect(receiptKeyOfSubmitted('not-hex', 'hex-to-decimal')).toBe('not-hex');
  });
});
