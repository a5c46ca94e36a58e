/**
 * Message templates: what a version holds per channel, how it is checked, and how it renders.
 *
 * Rendering is LiquidJS's: no code runs from a template (only its tags and filters), every
 * render is bounded (time, memory, and the size of what is parsed), `include`/`render`/`layout`
 * find no file (the engine is given an empty set of partials), and only a value's own
 * properties are read. Every variable is strict: a variable the template uses and the
 * variables do not give fails the render, naming it, rather than sending an empty string to a
 * customer. The `html` part of an e-mail escapes every output (`{{ name }}` of `<b>` gives
 * `&lt;b&gt;`); a template opts out for one output with Liquid's `| raw`.
 *
 * A version is immutable once written, so its parsed parts are cached by (name, version).
 */
import { Liquid, type Template } from 'liquidjs';
import type { TemplateVersion } from '../../store/port.ts';
import { coreError } from '../../errors.ts';
import { smsSegments, type SmsSegments } from '@omnibus/sdk';

/** The parts each channel's templates hold, and those a version must have (one of each inner list). */
export const CHANNELS = {
  email: { parts: ['subject', 'html', 'text'], required: [['subject'], ['html', 'text']] },
  sms: { parts: ['text'], required: [['text']] },
  whatsapp: { parts: ['text'], required: [['text']] },
} as const satisfies Record<string, { parts: readonly string[]; required: ReadonlyArray<readonly string[]> }>;

export type Channel = keyof typeof CHANNELS;

export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** BCP 47-like: a language, then optional subtags (`en`, `fr-CA`, `zh-Hant-TW`, `pt_BR`). */
export const LOCALE_PATTERN = /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$/;

export interface TemplateLimits {
  /** Most ms one part's render may take (LiquidJS's renderLimit). */
  renderMs: number;
  /** Most characters one render may allocate in strings and ranges (LiquidJS's memoryLimit). */
  memory: number;
  /** Most characters of one part's source (LiquidJS's parseLimit). */
  parse: number;
}

export const DEFAULT_TEMPLATE_LIMITS: TemplateLimits = { renderMs: 1_000, memory: 1_000_000, parse: 100_000 };

/** The content a new version is given: its channel, default locale and each locale's parts. */
export interface TemplateContent {
  channel: Channel;
  defaultLocale: string;
  locales: Record<string, Record<string, string>>;
}

export interface Rendered {
  locale: string;
  parts: Record<string, string>;
  /** For SMS: the rendered text's alphabet and cost. */
  sms?: SmsSegments;
}

/** Where the variables came from, for error messages (`variables`, `messages[2].value.template.variables`). */
export interface RenderContext {
  variablesKey: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Tags that would read other templates: refused when parsed, not when a message renders. */
const FILE_TAGS = ['include', 'render', 'layout'];

export class TemplateEngine {
  /** Outputs as they are: subjects, plain text, SMS. */
  private readonly plain: Liquid;
  /** Outputs HTML-escaped: the `html` part. */
  private readonly html: Liquid;
  private readonly parsed = new Map<string, Template[][]>();
  private readonly maxCached: number;

  constructor(
    private readonly limits: TemplateLimits = DEFAULT_TEMPLATE_LIMITS,
    options: { maxCachedParts?: number } = {},
  ) {
    const common = {
      strictVariables: true,
      strictFilters: true,
      ownPropertyOnly: true,
      templates: {},
      cache: false,
      renderLimit: limits.renderMs,
      memoryLimit: limits.memory,
      parseLimit: limits.parse,
    };
    this.plain = new Liquid(common);
    this.html = new Liquid({ ...common, outputEscape: 'escape' });
    for (const engine of [this.plain, this.html]) {
      for (const tag of FILE_TAGS) {
        engine.registerTag(tag, {
          parse() {
            throw new Error(`the ${tag} tag is not available: a template is one text, it reads no other`);
          },
          render() {
            return '';
          },
        });
      }
    }
    this.maxCached = options.maxCachedParts ?? 10_000;
  }

  /**
   * Checks a version's content as given through REST: throws OMNI_ERR_TEMPLATE_INVALID on the
   * first problem, naming its key. Returns, for SMS templates, each locale's alphabet and cost
   * of its fixed text (tags and outputs left out: what any render costs at least).
   */
  check(input: unknown): { content: TemplateContent; sms?: Record<string, SmsSegments> } {
    if (!isObject(input)) throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: 'body', problem: 'expected a JSON object {channel, default_locale, locales}' });
    const channel = input.channel;
    if (typeof channel !== 'string' || !(channel in CHANNELS)) {
      throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: 'channel', problem: `expected one of ${Object.keys(CHANNELS).join(', ')}` });
    }
    const spec = CHANNELS[channel as Channel];
    const locales = input.locales;
    if (!isObject(locales) || Object.keys(locales).length === 0) {
      throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: 'locales', problem: 'expected an object of at least one locale, e.g. {"en": {…}}' });
    }
    const checked: Record<string, Record<string, string>> = {};
    const sms: Record<string, SmsSegments> = {};
    for (const [locale, parts] of Object.entries(locales)) {
      const key = `locales.${locale}`;
      if (!LOCALE_PATTERN.test(locale)) throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key, problem: 'expected a locale tag such as en, fr or pt-BR' });
      if (!isObject(parts)) throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key, problem: `expected an object of parts (${spec.parts.join(', ')})` });
      for (const [part, text] of Object.entries(parts)) {
        if (!(spec.parts as readonly string[]).includes(part)) {
          throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: `${key}.${part}`, problem: `a ${channel} template has no part ${part} (parts: ${spec.parts.join(', ')})` });
        }
        if (typeof text !== 'string') throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: `${key}.${part}`, problem: 'expected a string' });
        try {
          this.engineFor(part).parse(text);
        } catch (error) {
          throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: `${key}.${part}`, problem: `does not parse: ${(error as Error).message}` });
        }
      }
      for (const oneOf of spec.required) {
        if (!oneOf.some((part) => typeof parts[part] === 'string')) {
          throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: `${key}.${oneOf.join('|')}`, problem: `a ${channel} template needs ${oneOf.length > 1 ? `one of ${oneOf.join(', ')}` : oneOf[0]}` });
        }
      }
      checked[locale] = parts as Record<string, string>;
      if (channel === 'sms') sms[locale] = smsSegments(fixedText(parts.text as string));
    }
    const defaultLocale = input.default_locale ?? (Object.keys(locales).length === 1 ? Object.keys(locales)[0] : undefined);
    if (typeof defaultLocale !== 'string' || !(defaultLocale in locales)) {
      throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: 'default_locale', problem: 'expected one of the locales given (required with several locales)' });
    }
    return { content: { channel: channel as Channel, defaultLocale, locales: checked }, ...(channel === 'sms' ? { sms } : {}) };
  }

  /**
   * The locale a version renders for `wanted`: the exact one (case-insensitive), else its
   * language (`fr` for `fr-CA`), else the version's default.
   */
  static localeFor(version: Pick<TemplateVersion, 'locales' | 'defaultLocale'>, wanted: string | undefined): string {
    if (wanted) {
      const available = Object.keys(version.locales);
      const normal = (l: string) => l.toLowerCase().replace(/_/g, '-');
      const exact = available.find((l) => normal(l) === normal(wanted));
      if (exact) return exact;
      const language = normal(wanted).split('-')[0];
      const byLanguage = available.find((l) => normal(l) === language);
      if (byLanguage) return byLanguage;
    }
    return version.defaultLocale;
  }

  /** Renders every part of the locale `wanted` falls back to. Throws registry errors naming the variable or the part. */
  render(version: TemplateVersion, wanted: string | undefined, variables: unknown, context: RenderContext): Rendered {
    if (!isObject(variables)) throw coreError('OMNI_ERR_TEMPLATE_VARIABLES_INVALID', { key: context.variablesKey, problem: 'expected a JSON object' });
    const locale = TemplateEngine.localeFor(version, wanted);
    const source = version.locales[locale]!;
    const names = Object.keys(source);
    const templates = this.parsedParts(version, locale, names);
    const parts: Record<string, string> = {};
    names.forEach((part, i) => {
      const where = { template: version.name, version: version.version, locale };
      try {
        parts[part] = this.engineFor(part).renderSync(templates[i]!, variables) as string;
      } catch (error) {
        const missing = /^undefined variable: ([^,]+)/.exec((error as Error).message);
        if (missing) throw coreError('OMNI_ERR_TEMPLATE_VARIABLE_MISSING', { ...where, variable: missing[1]!, key: context.variablesKey });
        throw coreError('OMNI_ERR_TEMPLATE_RENDER_FAILED', { ...where, part, problem: (error as Error).message });
      }
    });
    return { locale, parts, ...(version.channel === 'sms' ? { sms: smsSegments(parts.text ?? '') } : {}) };
  }

  private engineFor(part: string): Liquid {
    return part === 'html' ? this.html : this.plain;
  }

  private parsedParts(version: TemplateVersion, locale: string, names: readonly string[]): Template[][] {
    // Keyed by the version's creation time too: a template deleted and created again reuses its numbers.
    const key = `${version.name}\u0000${version.version}\u0000${version.createdAt}\u0000${locale}`;
    let templates = this.parsed.get(key);
    if (!templates) {
      templates = names.map((part) => this.engineFor(part).parse(version.locales[locale]![part]!));
      if (this.parsed.size >= this.maxCached) this.parsed.delete(this.parsed.keys().next().value!);
      this.parsed.set(key, templates);
    }
    return templates;
  }
}

/** A template's text less its Liquid tags and outputs: what every render of it contains at least. */
function fixedText(source: string): string {
  return source.replace(/\{%-?[\s\S]*?-?%\}|\{\{-?[\s\S]*?-?\}\}/g, '');
}
