/**
 * The bus's TaskRunnerFactory: what the herder calls to run the sink and source tasks
 * assigned to this worker.
 */
import type { SinkTaskSpec, SourceTaskSpec, TaskRunner, TaskRunnerFactory } from './task-runner.ts';
import { PollBudget } from './consumer.ts';
import { SinkRunner, type SinkRunnerDeps } from './sink-runner.ts';
import { NeverHandedOff } from './sink-reads.ts';
import { SourceRunner } from './source-runner.ts';
import { TemplateEngine } from '../transforms/templates/engine.ts';

/** What a worker gives its task runners: a sink's deps cover a source's. */
export type TaskRunnerDeps = SinkRunnerDeps;

export function createTaskRunnerFactory(deps: TaskRunnerDeps): TaskRunnerFactory {
  const pollBudget = deps.pollBudget ?? new PollBudget();
  const neverHandedOff = deps.neverHandedOff ?? new NeverHandedOff();
  // One engine for the worker's tasks: a template version is parsed once, whichever task renders it.
  const templateEngine = deps.templateEngine ?? new TemplateEngine();
  return {
    sink: (spec: SinkTaskSpec): TaskRunner => new SinkRunner(spec, { ...deps, pollBudget, neverHandedOff, templateEngine }),
    source: (spec: SourceTaskSpec): TaskRunner => new SourceRunner(spec, { ...deps, templateEngine }),
  };
}
