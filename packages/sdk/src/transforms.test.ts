import { describe, expect, it } from 'vitest';
import { ConfigSpec } from './config.ts';
import { definePredicate, defineTransformation, isPredicate, isTransformation, runPredicate, runTransformation } from './transforms.ts';
import { sdkApiVersionOf, SDK_API_VERSION } from './version.ts';

const Uppercase = defineTransformation({
  className: 'com.example.Uppercase',
  aliases: ['Uppercase'],
  version: '1.0.0',
  description: 'Upper-cases one string field of the value.',
  config: ConfigSpec.builder().string('field', { documentation: 'The field to upper-case.' }),
  create: ({ field }) => ({
    apply(record) {
      const value = record.value as Record<string, unknown> | null;
      if (value === null || typeof value[field] !== 'string') return record;
      return { ...record, value: { ...value, [field]: (value[field] as string).toUpperCase() } };
    },
  }),
});

const IsEven = definePredicate({
  className: 'com.example.IsEven',
  version: '1.0.0',
  description: 'True when the value is an even number.',
  config: ConfigSpec.builder(),
  create: () => ({ test: (record) => typeof record.value === 'number' && record.value % 2 === 0 }),
});

describe('transformations and predicates in the SDK', () => {
  it('stamps the SDK API version and the type, and is recognised by shape', () => {
    expect(Uppercase.type).toBe('transformation');
    expect(IsEven.type).toBe('predicate');
    expect(sdkApiVersionOf(Uppercase)).toBe(SDK_API_VERSION);
    expect(sdkApiVersionOf(IsEven)).toBe(SDK_API_VERSION);
    expect(isTransformation(Uppercase)).toBe(true);
    expect(isTransformation(IsEven)).toBe(false);
    expect(isPredicate(IsEven)).toBe(true);
  });

  it('runs a transformation on records with defaults filled in', () => {
    const [out, untouched] = runTransformation(Uppercase, { field: 'name' }, [{ value: { name: 'ada' } }, { value: null }]);
    expect(out).toMatchObject({ topic: 'test', key: null, value: { name: 'ADA' }, headers: {}, direction: 'sink' });
    expect(untouched?.value).toBeNull();
  });

  it('refuses a config its spec refuses, as the runtime would', () => {
    expect(() => runTransformation(Uppercase, {}, [{ value: 1 }])).toThrow(/field/);
  });

  it('runs a predicate', () => {
    expect(runPredicate(IsEven, {}, [{ value: 2 }, { value: 3 }, { value: 'x' }])).toEqual([true, false, false]);
  });
});
