import { describe, expect, it } from 'vitest';
import { DATA_CODING_GSM7, DATA_CODING_UCS2, encodeGsm7, encodeSegments, isGsm7, splitText } from './sms-encoding.ts';

const ucs2Text = (payload: Buffer) => Buffer.from(payload).swap16().toString('utf16le');
const hasLoneSurrogate = (text: string) => /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);

describe('GSM-7 detection and encoding', () => {
  it('accepts the basic and extension tables and refuses the rest', () => {
    expect(isGsm7('Hello @£$¥ èéùìò ÄÖÑÜ§¿ äöñüà ΔΦΓΛΩΠΨΣΘΞ ¡')).toBe(true);
    expect(isGsm7('{}[]~|^\\€\f')).toBe(true);
    expect(isGsm7('ç')).toBe(false); // only capital Ç is in the table
    expect(isGsm7('😀')).toBe(false);
    expect(isGsm7('\u001b')).toBe(false); // the escape itself is not a character
  });

  it('writes GSM 03.38 code points, extension characters as escape + code', () => {
    expect([...encodeGsm7('@A_€')]).toEqual([0x00, 0x41, 0x11, 0x1b, 0x65]);
    expect([...encodeGsm7('[]')]).toEqual([0x1b, 0x3c, 0x1b, 0x3e]);
  });
});

describe('segmentation', () => {
  it('keeps 160 GSM-7 characters in one SMS without a header', () => {
    const encoded = encodeSegments('x'.repeat(160));
    expect(encoded).toMatchObject({ encoding: 'GSM7', dataCoding: DATA_CODING_GSM7, udh: false });
    expect(encoded.segments.map((s) => s.length)).toEqual([160]);
  });

  it('splits 200 GSM-7 characters into 153 + 47 with a concatenation UDH', () => {
    const encoded = encodeSegments('y'.repeat(200), { reference: 42 });
    expect(encoded.udh).toBe(true);
    expect(encoded.segments.map((s) => [...s.subarray(0, 6)])).toEqual([
      [0x05, 0x00, 0x03, 42, 2, 1],
      [0x05, 0x00, 0x03, 42, 2, 2],
    ]);
    expect(encoded.payloads.map((p) => p.length)).toEqual([153, 47]);
  });

  it('counts extension characters as two septets', () => {
    expect(splitText('€'.repeat(80)).payloads.map((p) => p.length)).toEqual([160]);
    expect(splitText('€'.repeat(81)).payloads.length).toBe(2);
  });

  it('never ends a segment between an escape and its code', () => {
    const text = `${'a'.repeat(152)}€${'b'.repeat(10)}`;
    const { payloads } = splitText(text);
    expect(payloads.map((p) => p.length)).toEqual([152, 12]);
    expect([...(payloads[1] as Buffer).subarray(0, 2)]).toEqual([0x1b, 0x65]);
  });

  it('uses UCS-2 for any other character: 70 in one SMS, 67 per segment', () => {
    expect(splitText('ж'.repeat(70))).toMatchObject({ encoding: 'UCS2', dataCoding: DATA_CODING_UCS2 });
    expect(splitText('ж'.repeat(70)).payloads.map((p) => p.length)).toEqual([140]);
    expect(splitText('ж'.repeat(71)).payloads.map((p) => p.length / 2)).toEqual([67, 4]);
    expect(ucs2Text(splitText('Привет').payloads[0] as Buffer)).toBe('Привет');
  });

  it('keeps surrogate pairs whole across UCS-2 segments', () => {
    const text = `${'ж'.repeat(66)}😀${'ж'.repeat(10)}`;
    const { payloads } = splitText(text);
    expect(payloads.map((p) => p.length / 2)).toEqual([66, 12]);
    const parts = payloads.map(ucs2Text);
    expect(parts.some(hasLoneSurrogate)).toBe(false);
    expect(parts.join('')).toBe(text);
  });

  it('splits a long emoji text into intact segments that rebuild the text', () => {
    const text = 'Bonne année 🎉🥂 '.repeat(12);
    const encoded = encodeSegments(text, { reference: 7 });
    expect(encoded.dataCoding).toBe(DATA_CODING_UCS2);
    expect(encoded.segments.every((s) => s.length <= 6 + 134)).toBe(true);
    const parts = encoded.payloads.map(ucs2Text);
    expect(parts.some(hasLoneSurrogate)).toBe(false);
    expect(parts.join('')).toBe(text);
    expect(encoded.segments.map((s) => s[5])).toEqual(encoded.segments.map((_, i) => i + 1));
  });
});
