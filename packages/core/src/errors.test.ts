import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OmnibusError } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { CoreError, coreError, ERRORS, toHttpError, type ErrorCode } from './errors.ts';

const src = dirname(fileURLToPath(import.meta.url));
const page = readFileSync(join(src, '..', 'docs', 'errors.md'), 'utf8');
const codes = Object.keys(ERRORS) as ErrorCode[];

/** Core's source files, tests left out. */
function sources(dir = src): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}
const files = sources().map((path) => ({ path: relative(src, path), text: readFileSync(path, 'utf8') }));

describe('the error registry', () => {
  it('has every code used somewhere in the source (besides the registry itself)', () => {
    const unused = codes.filter((code) => !files.some(({ path, text }) => path !== 'errors.ts' && text.includes(`'${code}'`)));
    expect(unused).toEqual([]);
  });

  it('has every OMNI_ERR_ code core raises (a connector\'s own outcome codes aside)', () => {
    const raised = new Set(
      files.filter(({ path }) => !path.startsWith('connectors/') && !path.startsWith('cli/')).flatMap(({ text }) => text.match(/'OMNI_ERR_[A-Z0-9_]+'/g) ?? []),
    );
    const unknown = [...raised].map((quoted) => quoted.slice(1, -1)).filter((code) => !(code in ERRORS));
    expect(unknown).toEqual([]);
  });

  it('is documented on docs/errors.md, code by code, and the page names no other code', () => {
    const documented = [...page.matchAll(/^\| `(OMNI_ERR_[A-Z0-9_]+)` \| (\d{3}) \|/gm)].map(([, code, status]) => ({ code, status: Number(status) }));
    expect(documented.map((d) => d.code).sort()).toEqual([...codes].sort());
    for (const { code, status } of documented) expect(status).toBe(ERRORS[code as ErrorCode].status);
    const mentioned = new Set(page.match(/OMNI_ERR_[A-Z0-9_]+/g));
    expect([...mentioned].filter((code) => !(code in ERRORS))).toEqual([]);
  });

  it('gives each error an HTTP error status and a message', () => {
    for (const code of codes) {
      expect(ERRORS[code].status, code).toBeGreaterThanOrEqual(400);
      expect(ERRORS[code].status, code).toBeLessThan(600);
      expect(ERRORS[code].message.length, code).toBeGreaterThan(0);
    }
  });
});

describe('coreError and toHttpError', () => {
  it('fills the template, takes the status from the registry, and answers Kafka\'s {error_code, message}', () => {
    const error = coreError('OMNI_ERR_TASK_NOT_FOUND', { connector: 'mail', task: 3 });
    expect(error).toBeInstanceOf(CoreError);
    expect(error).toBeInstanceOf(OmnibusError);
    expect(error.code).toBe('OMNI_ERR_TASK_NOT_FOUND');
    expect(error.message).toBe('Unknown task: mail-3');
    expect(toHttpError(error)).toEqual({ status: 404, body: { error_code: 404, message: 'Unknown task: mail-3' } });
  });

  it('adds the details to the body', () => {
    const error = coreError('OMNI_ERR_BUS_MESSAGES_INVALID', { failing: 1, total: 2 }, { errors: [{ index: 1 }] });
    expect(toHttpError(error)).toEqual({
      status: 422,
      body: { error_code: 422, message: '1 of 2 messages are invalid; none was accepted', errors: [{ index: 1 }] },
    });
  });

  it('maps an OmnibusError raised elsewhere with a registry code by that code', () => {
    const error = new OmnibusError('OMNI_ERR_CONFIG_PROVIDER_UNRESOLVED', 'variable SMTP_PASSWORD is not set');
    expect(toHttpError(error)).toEqual({ status: 503, body: { error_code: 503, message: 'variable SMTP_PASSWORD is not set' } });
  });

  it('answers anything else unexpected with a 500', () => {
    expect(toHttpError(new Error('boom'))).toEqual({ status: 500, body: { error_code: 500, message: 'boom' } });
    expect(toHttpError(new OmnibusError('OMNI_ERR_SOMETHING_ELSE', 'x')).status).toBe(500);
  });
});
