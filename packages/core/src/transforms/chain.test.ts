import { ConfigSpec, defineTransformation, isConfigError, type TransformRecord } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { BUILTIN_CATALOG, transformCatalog } from './catalog.ts';
import { buildChain, chainSpec, validateChain } from './chain.ts';

const record = (topic: string, value: unknown, key: unknown = null): TransformRecord => ({ topic, key, value, headers: {}, timestamp: 0, direction: 'sink' });

function chainErrors(config: Record<string, string>): Record<string, string[]> {
  try {
    buildChain(config, BUILTIN_CATALOG);
  } catch (error) {
    if (isConfigError(error)) return error.errors;
    throw error;
  }
  return {};
}

describe('the transformation chain', () => {
  it('applies stages in order (Kafka docs: HoistField then InsertField)', () => {
    const chain = buildChain(
      {
        transforms: 'MakeMap, InsertSource',
        'transforms.MakeMap.type': 'org.apache.kafka.connect.transforms.HoistField$Value',
        'transforms.MakeMap.field': 'line',
        'transforms.InsertSource.type': 'org.apache.kafka.connect.transforms.InsertField$Value',
        'transforms.InsertSource.static.field': 'data_source',
        'transforms.InsertSource.static.value': 'test-file-source',
      },
      BUILTIN_CATALOG,
    );
    expect(chain.aliases).toEqual(['MakeMap', 'InsertSource']);
    expect(chain.apply(record('t', 'hello'))?.value).toEqual({ line: 'hello', data_source: 'test-file-source' });
  });

  it('applies a stage only where its predicate holds, or does not with negate (Kafka docs example)', () => {
    const chain = buildChain(
      {
        transforms: 'Filter,Extract',
        'transforms.Filter.type': 'org.apache.kafka.connect.transforms.Filter',
        'transforms.Filter.predicate': 'IsFoo',
        'transforms.Extract.type': 'org.apache.kafka.connect.transforms.ExtractField$Key',
        'transforms.Extract.field': 'other_field',
        'transforms.Extract.predicate': 'IsBar',
        'transforms.Extract.negate': 'true',
        predicates: 'IsFoo,IsBar',
        'predicates.IsFoo.type': 'org.apache.kafka.connect.transforms.predicates.TopicNameMatches',
        'predicates.IsFoo.pattern': 'foo',
        'predicates.IsBar.type': 'org.apache.kafka.connect.transforms.predicates.TopicNameMatches',
        'predicates.IsBar.pattern': 'bar',
      },
      BUILTIN_CATALOG,
    );
    const key = { other_field: 'k' };
    expect(chain.apply(record('foo', 1, key))).toBeNull();
    expect(chain.apply(record('bar', 1, key))?.key).toEqual(key);
    expect(chain.apply(record('baz', 1, key))?.key).toBe('k');
  });

  it('stops at a stage that drops the record: later stages do not see it', () => {
    const seen: unknown[] = [];
    const Spy = defineTransformation({
      className: 'Spy',
      version: '1',
      description: 'records what it sees',
      config: ConfigSpec.builder(),
      create: () => ({ apply: (r) => (seen.push(r.value), r) }),
    });
    const chain = buildChain(
      {
        transforms: 'drop,spy',
        'transforms.drop.type': 'Filter',
        'transforms.drop.predicate': 'tomb',
        'transforms.spy.type': 'Spy',
        predicates: 'tomb',
        'predicates.tomb.type': 'RecordIsTombstone',
      },
      transformCatalog({ transformations: [Spy as never] }),
    );
    expect(chain.apply(record('t', null))).toBeNull();
    expect(chain.apply(record('t', 5))?.value).toBe(5);
    expect(seen).toEqual([5]);
  });

  it('an empty config is an empty chain; aliases not listed in transforms are ignored, as Kafka does', () => {
    expect(buildChain({}, BUILTIN_CATALOG).empty).toBe(true);
    expect(buildChain({ 'transforms.off.type': 'Nope' }, BUILTIN_CATALOG).empty).toBe(true);
  });

  it('names the stage when a record fails in it, keeping the stage error code', () => {
    const chain = buildChain({ transforms: 'ins', 'transforms.ins.type': 'InsertField$Value', 'transforms.ins.topic.field': 't' }, BUILTIN_CATALOG);
    expect(() => chain.apply(record('t', 'text'))).toThrow(/Transformation ins \(org.apache.kafka.connect.transforms.InsertField\$Value\) failed: Only Map objects/);
    try {
      chain.apply(record('t', 'text'));
    } catch (error) {
      expect((error as { code: string }).code).toBe('OMNI_ERR_TRANSFORM_FAILED');
    }
  });
});

describe('chain validation errors, on their keys', () => {
  it('a listed alias without a type', () => {
    expect(chainErrors({ transforms: 'a' })).toEqual({ 'transforms.a.type': ['Missing required configuration "transforms.a.type" which has no default value.'] });
  });

  it('an unknown class, and a predicate class given as a transformation', () => {
    expect(chainErrors({ transforms: 'a', 'transforms.a.type': 'com.example.Nope' })).toEqual({
      'transforms.a.type': ['Invalid value com.example.Nope for configuration transforms.a.type: Class com.example.Nope could not be found.'],
    });
    expect(chainErrors({ transforms: 'a', 'transforms.a.type': 'TopicNameMatches' })['transforms.a.type']![0]).toMatch(/is a predicate, not a transformation/);
    expect(chainErrors({ predicates: 'p', 'predicates.p.type': 'Filter' })['predicates.p.type']![0]).toMatch(/is a transformation, not a predicate/);
  });

  it('a predicate alias that predicates does not list', () => {
    const errors = chainErrors({ transforms: 'f', 'transforms.f.type': 'Filter', 'transforms.f.predicate': 'IsFoo', predicates: 'IsBar', 'predicates.IsBar.type': 'RecordIsTombstone' });
    expect(Object.keys(errors)).toEqual(['transforms.f.predicate']);
    expect(errors['transforms.f.predicate']![0]).toMatch(/no predicate with alias IsFoo is listed in predicates \(IsBar\)/);
  });

  it('a duplicate alias', () => {
    expect(chainErrors({ transforms: 'a,a', 'transforms.a.type': 'Filter' })).toEqual({
      transforms: ['Invalid value a,a for configuration transforms: Duplicate alias provided.'],
    });
  });

  it("a stage's own config, with the alias prefix; a predicate's too", () => {
    const errors = chainErrors({
      transforms: 'route,mask',
      'transforms.route.type': 'RegexRouter',
      'transforms.route.regex': '(a',
      'transforms.mask.type': 'MaskField$Value',
      predicates: 'p',
      'predicates.p.type': 'io.omnibus.predicates.ValueFieldMatches',
      'predicates.p.field': 'to',
    });
    expect(errors['transforms.route.regex']![0]).toMatch(/Invalid regex/);
    expect(errors['transforms.route.replacement']).toEqual(['Missing required configuration "transforms.route.replacement" which has no default value.']);
    expect(errors['transforms.mask.fields']).toEqual(['Missing required configuration "transforms.mask.fields" which has no default value.']);
    expect(errors['predicates.p.pattern']).toEqual(['Invalid value null for configuration predicates.p.pattern: One of pattern, equals or in is required']);
  });

  it("validate gives Kafka's entries for every chain key, grouped per alias", () => {
    const result = validateChain(
      { transforms: 'f', 'transforms.f.type': 'Filter', 'transforms.f.predicate': 'p', predicates: 'p', 'predicates.p.type': 'HasHeaderKey', 'predicates.p.name': 'x' },
      BUILTIN_CATALOG,
    );
    expect(result.errors).toEqual({});
    expect(result.groups).toEqual(['Transforms', 'Predicates', 'Predicates: p', 'Transforms: f']);
    const names = result.configs.map((c) => c.definition.name);
    expect(names).toEqual(['transforms', 'predicates', 'predicates.p.type', 'predicates.p.name', 'transforms.f.type', 'transforms.f.predicate', 'transforms.f.negate']);
    const type = result.configs.find((c) => c.definition.name === 'transforms.f.type')!;
    expect(type.value.value).toBe('Filter');
    expect(type.value.recommended_values).toContain('org.apache.kafka.connect.transforms.InsertField$Value');
  });
});

describe('chainSpec', () => {
  it("gives the stages' keys as the connector config names them, so that a stage's secret is masked", () => {
    const Signed = defineTransformation({
      className: 'com.example.Signed',
      version: '1',
      description: 'signs records',
      config: ConfigSpec.builder().password('token', { documentation: 'signing key' }).string('header', { documentation: 'where', default: 'sig' }),
      create: () => ({ apply: (r) => r }),
    });
    const spec = chainSpec(
      { transforms: 'sign', 'transforms.sign.type': 'com.example.Signed', 'transforms.sign.token': 's3cret', 'transforms.off.type': 'com.example.Signed' },
      transformCatalog({ transformations: [Signed as never] }),
    );
    expect(spec.keys.map((k) => k.name)).toEqual(['transforms.sign.token', 'transforms.sign.header']);
    expect(spec.isSecret('transforms.sign.token')).toBe(true);
    expect(spec.isSecret('transforms.sign.header')).toBe(false);
  });

  it("never shows a stage's secret in a validation message", () => {
    const Signed = defineTransformation({
      className: 'com.example.Signed',
      version: '1',
      description: 'signs records',
      config: ConfigSpec.builder().password('token', { documentation: 'signing key' }),
      validate: (config): Record<string, string[]> => (config.token.value().length < 12 ? { token: ['The token must be at least 12 characters'] } : {}),
      create: () => ({ apply: (r) => r }),
    });
    const result = validateChain({ transforms: 'sign', 'transforms.sign.type': 'com.example.Signed', 'transforms.sign.token': 'tiny-pw' }, transformCatalog({ transformations: [Signed as never] }));
    expect(result.errors).toEqual({ 'transforms.sign.token': ['Invalid value [hidden] for configuration transforms.sign.token: The token must be at least 12 characters'] });
    expect(JSON.stringify(result)).not.toContain('tiny-pw');
  });
});
