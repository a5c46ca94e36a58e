/**
 * RenderTemplate: a connector's chain renders each record from a stored template, for records
 * that did not name one at produce (a CDC row, any source's record, a producer that sends data
 * rather than a message):
 *
 *   transforms=unwrap,render
 *   transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState
 *   transforms.render.type=io.omnibus.transforms.RenderTemplate
 *   transforms.render.template.name=welcome
 *   transforms.render.locale.field=lang
 *   transforms.render.variables.field=           (empty: the whole value)
 *   transforms.render.keep.fields=to             (the value fields kept beside the parts)
 *
 * The value gets the rendered parts as the channel's connector takes them (`subject`/`html`/
 * `text`, or WhatsApp's `text.body`), beside its own fields, and the record the headers
 * `omnibus.template.name`, `.version` and `.locale`, as a produce-time render gives them. A
 * record that already has them (rendered at produce) passes unchanged, so one sink takes both.
 * A missing variable fails the record permanently, naming the variable (it goes to the dead
 * letter topic when one is set): an empty string never reaches a customer.
 *
 * Why a transformation and not rendering in the bus Producer for every source record: a
 * source's records do not name a template (a CDC row is a table's columns), so the producer
 * would have to be told which template, locale and variables apply to which topic, which is
 * what a connector's chain is for; in the chain, earlier stages (ExtractNewRecordState,
 * ReplaceField) shape the variables first, predicates choose the records rendered, the same
 * topic can feed an email sink and an SMS sink each rendering its own template, and the bus
 * stays a bus of messages as they were produced. On a source connector's chain it renders
 * before publishing, and the stored message then keeps its version as a produce-time one does.
 *
 * The version is read before each batch (the live one, or `template.version`), so a batch
 * renders with one version; a record retried by the same task renders again with the version
 * it was first rendered with, so that a message does not change version between attempts.
 */
import { ConfigSpec, defineTransformation, validators, type TransformationInstance, type TransformRecord } from '@omnibus/sdk';
import type { TemplateVersion } from '../../store/port.ts';
import { coreError } from '../../errors.ts';
import { VERSION } from '../../version.ts';
import { requireMapOrNull, valueAtPath } from '../record.ts';
import { CREATE_WITH_SERVICES, type ChainServices, type TemplateSource } from '../services.ts';
import { NAME_PATTERN } from './engine.ts';
import { renderedMessage, TEMPLATE_HEADERS } from './service.ts';

/** Message ids whose first render's version a task remembers for their retries. */
const PINNED_IDS = 10_000;

const spec = ConfigSpec.builder()
  .string('template.name', {
    documentation: 'The stored template (`/templates`) each record is rendered from.',
    validator: {
      describe: '1 to 128 letters, digits, dots, dashes or underscores',
      check: (v) => (NAME_PATTERN.test(v) ? undefined : 'expected 1 to 128 letters, digits, dots, dashes or underscores'),
    },
  })
  .int('template.version', {
    documentation: 'The version to render with; the live version (read before each batch) when not set.',
    optional: true,
    validator: validators.atLeast(1),
  })
  .string('locale.field', {
    documentation: 'Dotted path of the value field holding the locale (e.g. `lang` or `customer.locale`); empty, or a record without it: the template\'s default locale.',
    default: '',
    importance: 'MEDIUM',
  })
  .string('variables.field', {
    documentation: 'Dotted path of the value field holding the variables (a map); empty: the whole value is the variables. A top-level variables field is removed from the rendered value.',
    default: '',
    importance: 'MEDIUM',
  })
  .list('keep.fields', {
    documentation:
      'The value fields kept beside the rendered parts (e.g. `to` for e-mail, whose connector takes no other field); empty: every field. The parts themselves are always set.',
    default: [],
    importance: 'MEDIUM',
  });

type RenderTemplateConfig = ReturnType<typeof spec.parse>;

const pathOf = (field: string): string[] => (field === '' ? [] : field.split('.'));

class TemplateRenderer implements TransformationInstance {
  private readonly localePath: string[];
  private readonly variablesPath: string[];
  /** Versions read, by number: immutable, so kept until the template is deleted and created again. */
  private readonly versions = new Map<number, TemplateVersion>();
  private templateCreatedAt: number | undefined;
  private current: TemplateVersion | undefined;
  private problem: Error | undefined;
  private readonly pinned = new Map<string, number>();

  constructor(
    private readonly config: RenderTemplateConfig,
    private readonly source: TemplateSource | undefined,
  ) {
    this.localePath = pathOf(config['locale.field']);
    this.variablesPath = pathOf(config['variables.field']);
  }

  async prepare(): Promise<void> {
    if (!this.source) throw new Error('RenderTemplate runs only in a worker (it reads templates from the store)');
    const name = this.config['template.name'];
    const record = await this.source.store.getTemplate(name);
    this.current = undefined;
    if (!record) {
      this.problem = coreError('OMNI_ERR_TEMPLATE_NOT_FOUND', { template: name });
      return;
    }
    if (record.createdAt !== this.templateCreatedAt) {
      this.versions.clear();
      this.pinned.clear();
      this.templateCreatedAt = record.createdAt;
    }
    const number = this.config['template.version'] ?? record.liveVersion;
    let version = this.versions.get(number);
    if (!version && number <= record.latestVersion) {
      version = await this.source.store.getTemplateVersion(name, number);
      if (version) this.versions.set(number, version);
    }
    if (!version) this.problem = coreError('OMNI_ERR_TEMPLATE_VERSION_NOT_FOUND', { template: name, version: number });
    this.current = version;
  }

  apply(record: TransformRecord): TransformRecord {
    if (record.headers[TEMPLATE_HEADERS.name] !== undefined) return record; // rendered at produce
    const value = requireMapOrNull(record.value, 'template rendering');
    if (value === null) return record; // a tombstone has nothing to render
    const version = this.versionFor(record);
    const where = this.config['variables.field'] === '' ? 'value' : `value.${this.config['variables.field']}`;
    const variables = this.variablesPath.length === 0 ? value : valueAtPath(value, this.variablesPath);
    if (variables === undefined) throw coreError('OMNI_ERR_TEMPLATE_VARIABLES_INVALID', { key: where, problem: 'the record has no such field' });
    const locale = this.localePath.length === 0 ? undefined : valueAtPath(value, this.localePath);
    const rendered = this.source!.engine.render(version, typeof locale === 'string' && locale !== '' ? locale : undefined, variables, { variablesKey: where });
    if (record.id !== undefined) this.pin(record.id, version.version);
    return { ...record, ...renderedMessage(this.keptFields(value), record.headers, version, rendered) };
  }

  private keptFields(value: Record<string, unknown>): Record<string, unknown> {
    const keep = this.config['keep.fields'];
    const kept: Record<string, unknown> = {};
    for (const [field, fieldValue] of Object.entries(value)) {
      if (this.variablesPath.length === 1 && field === this.variablesPath[0]) continue;
      if (keep.length === 0 || keep.includes(field)) kept[field] = fieldValue;
    }
    return kept;
  }

  close(): void {
    this.versions.clear();
    this.pinned.clear();
  }

  private versionFor(record: TransformRecord): TemplateVersion {
    const first = record.id === undefined ? undefined : this.pinned.get(record.id);
    const pinned = first === undefined ? undefined : this.versions.get(first);
    if (pinned) return pinned;
    if (!this.current) throw this.problem ?? new Error('RenderTemplate read no template before this batch');
    return this.current;
  }

  private pin(id: string, version: number): void {
    if (this.pinned.has(id)) return;
    if (this.pinned.size >= PINNED_IDS) this.pinned.delete(this.pinned.keys().next().value!);
    this.pinned.set(id, version);
  }
}

export const RenderTemplate = Object.assign(
  defineTransformation<RenderTemplateConfig>({
    className: 'io.omnibus.transforms.RenderTemplate',
    aliases: ['RenderTemplate'],
    version: VERSION,
    description: 'Renders each record from a stored template (locale and variables from value fields) and pins the version used in the omnibus.template.* headers',
    config: spec,
    // Outside a worker (a test kit, a validation) there is no store: prepare says so.
    create: (config) => new TemplateRenderer(config, undefined),
  }),
  { [CREATE_WITH_SERVICES]: (config: RenderTemplateConfig, services: ChainServices) => new TemplateRenderer(config, services.templates) },
);
