/**
 * Message templates through REST: create, add versions, choose the live one, read, delete, and
 * preview a render without sending (transforms/templates/service.ts holds the rules). A
 * rejected request writes nothing.
 */
import type { FastifyPluginAsync } from 'fastify';
import { coreError } from '../errors.ts';
import type { TemplateRecord, TemplateVersion } from '../store/port.ts';
import type { Templates, WrittenVersion } from '../transforms/templates/service.ts';

export interface TemplateRoutesDeps {
  templates: Templates;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function templateView(record: TemplateRecord) {
  return {
    name: record.name,
    live_version: record.liveVersion,
    latest_version: record.latestVersion,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  };
}

export function templateVersionView(version: TemplateVersion) {
  return {
    name: version.name,
    version: version.version,
    channel: version.channel,
    default_locale: version.defaultLocale,
    locales: version.locales,
    created_at: version.createdAt,
  };
}

function writtenView(written: WrittenVersion) {
  return { template: templateView(written.template), version: templateVersionView(written.version), ...(written.sms ? { sms: written.sms } : {}) };
}

function versionNumber(raw: string): number {
  const version = /^[1-9][0-9]{0,8}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(version)) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `Invalid version ${raw}: expected an integer from 1` });
  return version;
}

export function templateRoutes({ templates }: TemplateRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    app.post('/templates', async (request, reply) => {
      const body = request.body;
      if (!isObject(body)) throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: 'body', problem: 'expected a JSON object {name, channel, default_locale, locales}' });
      return reply.status(201).send(writtenView(await templates.create(body.name as string, body)));
    });

    app.get('/templates', async () => (await templates.list()).map(templateView));

    app.get<{ Params: { name: string } }>('/templates/:name', async (request) => {
      const record = await templates.get(request.params.name);
      return { ...templateView(record), live: templateVersionView(await templates.version(record.name, record.liveVersion)) };
    });

    // Kafka Connect's PUT /connectors/{name}/config: create or update. Here: a new version, live at once.
    app.put<{ Params: { name: string } }>('/templates/:name', async (request, reply) => {
      const written = await templates.addVersion(request.params.name, request.body, { live: true, createIfAbsent: true });
      return reply.status(written.created ? 201 : 200).send(writtenView(written));
    });

    app.delete<{ Params: { name: string } }>('/templates/:name', async (request, reply) => {
      await templates.delete(request.params.name);
      return reply.status(204).send();
    });

    app.get<{ Params: { name: string } }>('/templates/:name/versions', async (request) => (await templates.versions(request.params.name)).map(templateVersionView));

    app.post<{ Params: { name: string } }>('/templates/:name/versions', async (request, reply) => {
      const body = request.body;
      const live = isObject(body) ? body.live : undefined;
      if (live !== undefined && typeof live !== 'boolean') throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: 'live', problem: 'expected true or false' });
      const written = await templates.addVersion(request.params.name, body, { live: live === true });
      return reply.status(201).send(writtenView(written));
    });

    app.get<{ Params: { name: string; version: string } }>('/templates/:name/versions/:version', async (request) =>
      templateVersionView(await templates.version(request.params.name, versionNumber(request.params.version))),
    );

    app.put<{ Params: { name: string } }>('/templates/:name/live', async (request) => {
      const body = request.body;
      if (!isObject(body)) throw coreError('OMNI_ERR_TEMPLATE_INVALID', { key: 'body', problem: 'expected a JSON object {version}' });
      return templateView(await templates.setLive(request.params.name, body.version));
    });

    app.post<{ Params: { name: string } }>('/templates/:name/preview', async (request) => {
      const rendered = await templates.preview(request.params.name, request.body);
      return { name: request.params.name, version: rendered.version, locale: rendered.locale, parts: rendered.parts, ...(rendered.sms ? { sms: rendered.sms } : {}) };
    });
  };
}
