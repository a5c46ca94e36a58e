/**
 * What a worker lends the built-in stages that read its store: RenderTemplate reads templates.
 * A plugin from a package is created with its config alone, as Kafka configures one.
 */
import type { Store } from '../store/port.ts';
import type { TemplateEngine } from './templates/engine.ts';

/** Where a stage reads templates: the worker's store, and one engine (its parse cache) for all. */
export interface TemplateSource {
  store: Pick<Store, 'getTemplate' | 'getTemplateVersion'>;
  engine: TemplateEngine;
}

export interface ChainServices {
  templates?: TemplateSource;
}

/** The factory a built-in transformation created with the worker's services has (instead of `create`). */
export const CREATE_WITH_SERVICES = Symbol('omnibus.createWithServices');
