import { stableJson } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.ts';

/** What the runtime writes as a source partition's key, and what the SDK's test kit keys offsets by. */
const VECTORS: Array<[string, unknown, string | undefined]> = [
  ['keys sorted at every depth', { b: 1, a: { d: [2, { z: 1, y: 2 }], c: 'x' } }, '{"a":{"c":"x","d":[2,{"y":2,"z":1}]},"b":1}'],
  ['undefined left out of objects', { b: undefined, a: 1 }, '{"a":1}'],
  ['undefined in an array is null', [1, undefined, 2], '[1,null,2]'],
  ['functions and symbols as undefined', { f: () => 1, s: Symbol('s'), n: null }, '{"n":null}'],
  ['toJSON honoured (a Date is its ISO string)', { at: new Date(0) }, '{"at":"1970-01-01T00:00:00.000Z"}'],
  ['integer-like keys first, in numeric order', { b: 1, '10': 2, '2': 3, a: 4 }, '{"2":3,"10":2,"a":4,"b":1}'],
  ['keys compared by code unit', { é: 1, z: 2, Z: 3, _: 4 }, '{"Z":3,"_":4,"z":2,"é":1}'],
  ['strings escaped as JSON does', { 'a"b': 'line\nbreak' }, '{"a\\"b":"line\\nbreak"}'],
  ['scalars as JSON', 'text', '"text"'],
  ['non-finite numbers are null', { x: Number.NaN, y: Infinity }, '{"x":null,"y":null}'],
  ['empty object and array', { o: {}, a: [] }, '{"a":[],"o":{}}'],
  ['top-level undefined has no JSON', undefined, undefined],
];

describe('canonical JSON: one rule in the runtime and in the SDK test kit', () => {
  for (const [what, value, expected] of VECTORS) {
    it(what, () => {
      expect(canonicalJson(value)).toBe(expected);
      expect(stableJson(value)).toBe(expected);
    });
  }

  it('equal maps built in any key order give one string, on random maps', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const build = (depth: number): unknown => {
      const pick = random();
      if (depth > 2 || pick < 0.3) return pick < 0.1 ? null : pick < 0.2 ? Math.floor(random() * 1000) : `s${Math.floor(random() * 50)}`;
      if (pick < 0.45) return Array.from({ length: Math.floor(random() * 3) }, () => build(depth + 1));
      const keys = Array.from({ length: 1 + Math.floor(random() * 4) }, () => (random() < 0.2 ? String(Math.floor(random() * 20)) : `k${Math.floor(random() * 9)}`));
      return Object.fromEntries(keys.map((k) => [k, build(depth + 1)]));
    };
    const shuffled = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(shuffled);
      if (!value || typeof value !== 'object') return value;
      return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, shuffled(v)]));
    };
    for (let i = 0; i < 500; i++) {
      const value = build(0);
      const other = shuffled(value);
      expect(canonicalJson(other)).toBe(canonicalJson(value));
      expect(stableJson(other)).toBe(canonicalJson(value));
      expect(JSON.parse(canonicalJson(value) ?? 'null')).toEqual(JSON.parse(JSON.stringify(value) ?? 'null'));
    }
  });
});
