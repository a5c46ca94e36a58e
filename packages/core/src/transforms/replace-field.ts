/**
 * Kafka's ReplaceField: keeps only `include`d fields, drops `exclude`d ones, then renames
 * (`renames=old:new,…`). Kafka's older names `whitelist`/`blacklist` are still read when the
 * new ones are not set. A tombstone passes through unchanged.
 */
import { ConfigSpec, type Validator } from '@omnibus/sdk';
import { keyValuePair } from './define.ts';
import { KAFKA_TRANSFORMS, operand, requireMap, withOperand } from './record.ts';

const renameMappings: Validator<string[]> = {
  describe: 'list of colon-delimited pairs, e.g. foo:bar,abc:xyz',
  check: (mappings) => {
    const bad = mappings.find((m) => m.split(':').length !== 2 || m.split(':').some((part) => part === ''));
    return bad === undefined ? undefined : `Invalid rename mapping: ${bad}`;
  },
};

const spec = ConfigSpec.builder()
  .list('exclude', { documentation: 'Fields to exclude. This takes precedence over the fields to include.', default: [] })
  .list('include', { documentation: 'Fields to include. If specified, only these fields will be used.', default: [] })
  .list('renames', { documentation: 'Field rename mappings.', default: [], validator: renameMappings })
  .list('blacklist', { documentation: 'Deprecated. Use exclude instead.', optional: true })
  .list('whitelist', { documentation: 'Deprecated. Use include instead.', optional: true });

export const ReplaceField = keyValuePair({
  packageName: KAFKA_TRANSFORMS,
  simpleName: 'ReplaceField',
  description: 'Filters or renames fields',
  config: spec,
  create(config, side) {
    const exclude = new Set(config.exclude.length > 0 ? config.exclude : (config.blacklist ?? []));
    const include = new Set(config.include.length > 0 ? config.include : (config.whitelist ?? []));
    const renames = new Map(config.renames.map((m) => m.split(':') as [string, string]));
    const kept = (name: string) => !exclude.has(name) && (include.size === 0 || include.has(name));
    return {
      apply(record) {
        const current = operand(record, side);
        if (current === null || current === undefined) return record;
        const updated: Record<string, unknown> = {};
        for (const [name, value] of Object.entries(requireMap(current, 'field replacement'))) {
          if (kept(name)) updated[renames.get(name) ?? name] = value;
        }
        return withOperand(record, side, updated);
      },
    };
  },
});
