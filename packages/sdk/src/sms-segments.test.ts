import { describe, expect, it } from 'vitest';
import { encodeSegments, smsSegments } from './sms-encoding.ts';

// The vectors of sms-encoding.test.ts, counted instead of encoded.
describe('smsSegments', () => {
  it('takes the basic and extension tables as GSM-7 and anything else as UCS-2', () => {
    expect(smsSegments('Hello @£$¥ èéùìò ÄÖÑÜ§¿ äöñüà ΔΦΓΛΩΠΨΣΘΞ ¡').encoding).toBe('GSM7');
    expect(smsSegments('{}[]~|^\\€\f')).toEqual({ encoding: 'GSM7', segments: 1, units: 20 });
    expect(smsSegments('ç').encoding).toBe('UCS2'); // only capital Ç is in the table
    expect(smsSegments('😀').encoding).toBe('UCS2');
    expect(smsSegments('\u001b').encoding).toBe('UCS2'); // the escape itself is not a character
  });

  it('keeps 160 GSM-7 characters in one SMS and splits 200 into 153 + 47', () => {
    expect(smsSegments('a'.repeat(160))).toEqual({ encoding: 'GSM7', segments: 1, units: 160 });
    expect(smsSegments('a'.repeat(200))).toEqual({ encoding: 'GSM7', segments: 2, units: 200 });
  });

  it('counts extension characters as two septets, never split from their escape', () => {
    expect(smsSegments('€'.repeat(80)).segments).toBe(1);
    expect(smsSegments('€'.repeat(81)).segments).toBe(2);
    // 152 + the escape would fill 153: the pair moves to the second segment ([152, 12]).
    expect(smsSegments(`${'a'.repeat(152)}€${'b'.repeat(10)}`)).toEqual({ encoding: 'GSM7', segments: 2, units: 164 });
    expect(smsSegments(`${'a'.repeat(152)}€${'b'.repeat(151)}`).segments).toBe(2);
    expect(smsSegments(`${'a'.repeat(152)}€${'b'.repeat(152)}`).segments).toBe(3);
  });

  it('holds 70 UCS-2 characters in one SMS, 67 per segment beyond', () => {
    expect(smsSegments('ж'.repeat(70))).toEqual({ encoding: 'UCS2', segments: 1, units: 70 });
    expect(smsSegments('ж'.repeat(71))).toEqual({ encoding: 'UCS2', segments: 2, units: 71 });
    expect(smsSegments('ж'.repeat(67 * 3)).segments).toBe(3);
  });

  it('keeps surrogate pairs whole across UCS-2 segments', () => {
    // [66, 12] as the encoder splits it: the pair does not fit in the first segment's last unit.
    expect(smsSegments(`${'ж'.repeat(66)}😀${'ж'.repeat(10)}`)).toEqual({ encoding: 'UCS2', segments: 2, units: 78 });
    expect(smsSegments(`${'ж'.repeat(66)}😀${'ж'.repeat(66)}`).segments).toBe(3);
  });

  it('counts nothing for an empty text', () => {
    expect(smsSegments('')).toEqual({ encoding: 'GSM7', segments: 0, units: 0 });
  });

  it('counts what the encoder sends, segment for segment', () => {
    const texts = ['x'.repeat(459), `${'a'.repeat(152)}€${'b'.repeat(300)}`, 'ж'.repeat(135), `${'ж'.repeat(66)}😀${'ж'.repeat(70)}`, 'short'];
    for (const text of texts) expect(smsSegments(text).segments).toBe(encodeSegments(text).segments.length);
  });
});
