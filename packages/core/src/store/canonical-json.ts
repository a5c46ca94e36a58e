/**
 * Canonical JSON: JSON.stringify with the keys of every object sorted, so that equal maps give
 * equal strings. It is the identity of a source partition (the key of its stored offset row on
 * LMDB and CQL, and of the maps the source runner and the herder build from them) and of a
 * topic's value schema.
 *
 * Exactly JSON.stringify's rules otherwise: `undefined`, functions and symbols are left out of
 * objects and become `null` in arrays, `toJSON` is honoured (a Date is its ISO string). The
 * keys are put in an object in sorted order, so integer-like keys come first in numeric order
 * (JavaScript's own order for them): that is the format the stores have always written. The
 * SDK's test kit keeps an identical copy (`stableJson`; the SDK does not depend on core), and
 * both are checked against the same vectors.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}
