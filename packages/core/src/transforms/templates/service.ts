/**
 * Templates as the REST API and a produce use them: versions written once and numbered from
 * 1, one live version per template, and messages rendered from a template at produce.
 *
 * A produce names a template in the message value instead of giving a rendered body:
 *   {"to": "+33…", "template": {"name": "otp", "locale": "fr", "version"?: 3, "variables": {…}}}
 * The message is rendered then, with the live version unless it names one, and stored
 * rendered: the template reference is replaced by the parts (`subject`/`html`/`text`, or
 * WhatsApp's `{type: "text", text: {body}}`), and the headers `omnibus.template.name`,
 * `.version` and `.locale` record what it was rendered with. Every message so keeps the version
 * it was produced with, however the live version moves while it waits, and a missing variable
 * refuses the produce (nothing stored) instead of reaching a customer. A WhatsApp value of
 * `type: "template"` is Meta's own template and is left as it is.
 */
import type { Store, TemplateRecord, TemplateVersion } from '../../store/port.ts';
import { coreError } from '../../errors.ts';
import { NAME_PATTERN, TemplateEngine, type Rendered, type TemplateContent } from './engine.ts';
import type { SmsSegments } from '@omnibus/sdk';

export const TEMPLATE_HEADERS = { name: 'omnibus.template.name', version: 'omnibus.template.version', locale: 'omnibus.template.locale' } as const;

/** Compare-and-set rounds before a contended write gives up. */
const CAS_ATTEMPTS = 8;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface WrittenVersion {
  template: TemplateRecord;
  version: TemplateVersion;
  /** For SMS templates: each locale's alphabet and the cost of its fixed text. */
  sms?: Record<string, SmsSegments>;
}

export class Templates {
  constructor(
    private readonly store: Store,
    readonly engine: TemplateEngine = new TemplateEngine(),
    private readonly now: () => number = Date.now,
  ) {}

  static checkName(name: unknown, key = 'name'): string {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key, problem: 'expected 1 to 128 letters, digits, dots, dashes or underscores' });
    }
    return name;
  }

  /** Creates a template with its first version, live. */
  async create(name: string, input: unknown): Promise<WrittenVersion> {
    Templates.checkName(name);
    const { content, sms } = this.engine.check(input);
    const at = this.now();
    const record: TemplateRecord = { name, liveVersion: 1, latestVersion: 1, createdAt: at, updatedAt: at };
    if (await this.store.getTemplate(name)) throw coreError('OMNI_ERR_TEMPLATE_EXISTS', { template: name });
    const version = versionOf(name, 1, content, at);
    // The version first: a record is only ever seen with its versions written.
    if (!(await this.store.createTemplateVersion(version))) throw coreError('OMNI_ERR_TEMPLATE_EXISTS', { template: name });
    if (!(await this.store.createTemplate(record))) throw coreError('OMNI_ERR_TEMPLATE_EXISTS', { template: name });
    return { template: record, version, ...(sms ? { sms } : {}) };
  }

  /** Adds a version (the next number); makes it live when `live`. Creates the template when `createIfAbsent` and it does not exist. */
  async addVersion(name: string, input: unknown, options: { live: boolean; createIfAbsent?: boolean }): Promise<WrittenVersion & { created: boolean }> {
    Templates.checkName(name);
    const { content, sms } = this.engine.check(input);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.store.getTemplate(name);
      if (!current) {
        if (!options.createIfAbsent) throw coreError('OMNI_ERR_TEMPLATE_NOT_FOUND', { template: name });
        try {
          return { ...(await this.create(name, input)), created: true };
        } catch (error) {
          if ((error as { code?: string }).code === 'OMNI_ERR_TEMPLATE_EXISTS') continue; // created meanwhile: add to it
          throw error;
        }
      }
      const at = this.now();
      const number = current.latestVersion + 1;
      const version = versionOf(name, number, content, at);
      // A version left by a writer that lost the record's update is taken over: versions are numbered, not owned.
      if (!(await this.store.createTemplateVersion(version))) {
        const existing = await this.store.getTemplateVersion(name, number);
        if (!existing) continue;
        await this.store.updateTemplate({ ...current, latestVersion: number, updatedAt: at }, current);
        continue;
      }
      const record: TemplateRecord = { ...current, latestVersion: number, liveVersion: options.live ? number : current.liveVersion, updatedAt: at };
      if (await this.store.updateTemplate(record, current)) return { template: record, version, created: false, ...(sms ? { sms } : {}) };
    }
    throw coreError('OMNI_ERR_TEMPLATE_CONTENDED', { template: name });
  }

  async setLive(name: string, version: unknown): Promise<TemplateRecord> {
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
      throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: 'version', problem: 'expected a version number (an integer from 1)' });
    }
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.get(name);
      if (version > current.latestVersion || !(await this.store.getTemplateVersion(name, version))) {
        throw coreError('OMNI_ERR_TEMPLATE_VERSION_NOT_FOUND', { template: name, version });
      }
      const record = { ...current, liveVersion: version, updatedAt: this.now() };
      if (await this.store.updateTemplate(record, current)) return record;
    }
    throw coreError('OMNI_ERR_TEMPLATE_CONTENDED', { template: name });
  }

  async get(name: string): Promise<TemplateRecord> {
    const record = await this.store.getTemplate(name);
    if (!record) throw coreError('OMNI_ERR_TEMPLATE_NOT_FOUND', { template: name });
    return record;
  }

  list(): Promise<TemplateRecord[]> {
    return this.store.listTemplates();
  }

  async versions(name: string): Promise<TemplateVersion[]> {
    const record = await this.get(name);
    return (await this.store.listTemplateVersions(name)).filter((v) => v.version <= record.latestVersion);
  }

  /** The version `wanted` of the template, or its live one. */
  async version(name: string, wanted?: number): Promise<TemplateVersion> {
    const record = await this.get(name);
    const number = wanted ?? record.liveVersion;
    const version = number <= record.latestVersion ? await this.store.getTemplateVersion(name, number) : undefined;
    if (!version) throw coreError('OMNI_ERR_TEMPLATE_VERSION_NOT_FOUND', { template: name, version: number });
    return version;
  }

  async delete(name: string): Promise<void> {
    await this.get(name);
    await this.store.deleteTemplate(name);
  }

  /** Renders without sending: `body` is {variables, locale?, version?}. */
  async preview(name: string, body: unknown): Promise<Rendered & { version: number }> {
    if (!isObject(body)) throw coreError('OMNI_ERR_TEMPLATE_VARIABLES_INVALID', { key: 'body', problem: 'expected a JSON object {variables, locale?, version?}' });
    const { locale, version } = checkReference(body, '');
    const found = await this.version(name, version);
    return { version: found.version, ...this.engine.render(found, locale, body.variables ?? {}, { variablesKey: 'variables' }) };
  }

  /**
   * The produce's messages with every template reference rendered (see the file's comment);
   * the same array when none names a template. Throws on the first reference that fails: the
   * produce stores nothing.
   */
  async renderProduce(messages: unknown): Promise<unknown> {
    if (!Array.isArray(messages) || !messages.some(namesTemplate)) return messages;
    // Within one produce, every message naming a template without a version gets the same one.
    const versions = new Map<string, Promise<TemplateVersion>>();
    const versionOfRef = (name: string, wanted: number | undefined) => {
      const key = `${name}\u0000${wanted ?? 'live'}`;
      let found = versions.get(key);
      if (!found) versions.set(key, (found = this.version(name, wanted)));
      return found;
    };
    return Promise.all(
      messages.map(async (message: unknown, index) => {
        if (!namesTemplate(message)) return message;
        const prefix = `messages[${index}].value.template`;
        const { template: reference, ...rest } = message.value;
        if (!isObject(reference)) throw coreError('OMNI_ERR_TEMPLATE_VARIABLES_INVALID', { key: prefix, problem: 'expected {name, variables, locale?, version?}' });
        const name = Templates.checkName(reference.name, `${prefix}.name`);
        const { locale, version: wanted } = checkReference(reference, `${prefix}.`);
        const version = await versionOfRef(name, wanted);
        const rendered = this.engine.render(version, locale, reference.variables ?? {}, { variablesKey: `${prefix}.variables` });
        const headers = isObject(message.headers) ? (message.headers as Record<string, string>) : {};
        return { ...message, ...renderedMessage(rest, headers, version, rendered) };
      }),
    );
  }
}

/** The template a message was rendered from, as its headers recorded it. */
export function templateUsed(headers: Record<string, string>): { name: string; version: number; locale: string } | undefined {
  const name = headers[TEMPLATE_HEADERS.name];
  const version = headers[TEMPLATE_HEADERS.version];
  const locale = headers[TEMPLATE_HEADERS.locale];
  if (name === undefined || version === undefined || locale === undefined) return undefined;
  return { name, version: Number(version), locale };
}

function versionOf(name: string, version: number, content: TemplateContent, createdAt: number): TemplateVersion {
  return { name, version, channel: content.channel, defaultLocale: content.defaultLocale, locales: content.locales, createdAt };
}

/** A message whose value names one of our templates (not a WhatsApp value of Meta's `type: "template"`). */
function namesTemplate(message: unknown): message is { value: Record<string, unknown>; headers?: unknown } {
  return isObject(message) && isObject(message.value) && message.value.template !== undefined && message.value.type !== 'template';
}

function checkReference(reference: Record<string, unknown>, prefix: string): { locale?: string; version?: number } {
  const { locale, version } = reference;
  if (locale !== undefined && typeof locale !== 'string') throw coreError('OMNI_ERR_TEMPLATE_VARIABLES_INVALID', { key: `${prefix}locale`, problem: 'expected a locale tag' });
  if (version !== undefined && (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)) {
    throw coreError('OMNI_ERR_TEMPLATE_VARIABLES_INVALID', { key: `${prefix}version`, problem: 'expected a version number (an integer from 1)' });
  }
  return { ...(locale !== undefined ? { locale } : {}), ...(version !== undefined ? { version } : {}) };
}

/**
 * A value and headers once rendered: the parts in the value as the channel's connector takes
 * them, and the headers that pin the version and locale used (see the file's comment).
 */
export function renderedMessage(
  value: Record<string, unknown>,
  headers: Readonly<Record<string, string>>,
  version: TemplateVersion,
  rendered: Rendered,
): { value: Record<string, unknown>; headers: Record<string, string> } {
  return {
    value: { ...value, ...valueParts(version.channel, rendered.parts) },
    headers: {
      ...headers,
      [TEMPLATE_HEADERS.name]: version.name,
      [TEMPLATE_HEADERS.version]: String(version.version),
      [TEMPLATE_HEADERS.locale]: rendered.locale,
    },
  };
}

/** The rendered parts as the channel's connector takes them in a message value. */
function valueParts(channel: string, parts: Record<string, string>): Record<string, unknown> {
  if (channel === 'whatsapp') return { type: 'text', text: { body: parts.text ?? '' } };
  return parts;
}
