/**
 * Named loggers whose levels change at runtime, which Kafka Connect's `/admin/loggers` API
 * (KIP-495, rest/loggers.ts) reads and sets. Components take a named pino child
 * (`loggers.get('omnibus.herder')`); `PUT /admin/loggers/omnibus` then sets the level of `omnibus` and every logger under it
 * (`omnibus.*`), as log4j namespaces do, and loggers created later inherit it.
 *
 * A pino child copies its parent's level when it is made and never follows it again, so the
 * registry also keeps (weakly) every child made from a named logger, at any depth (a task's
 * `logger.child({task})`, Fastify's per-request loggers) and sets their level too.
 */
import type { Logger } from 'pino';
import { coreError } from '../errors.ts';

/** Kafka's LoggerLevel entity. */
export interface LoggerLevel {
  level: string;
  last_modified: number | null;
}

const ROOT = 'root';

/** log4j level names (what Kafka's API speaks) to pino's. */
const LOG4J_TO_PINO: Record<string, string> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
  FATAL: 'fatal',
  OFF: 'silent',
};
const PINO_TO_LOG4J = Object.fromEntries(Object.entries(LOG4J_TO_PINO).map(([log4j, pino]) => [pino, log4j]));

interface Entry {
  logger: Logger;
  lastModified: number | null;
  /** Children made from the logger, at any depth; weak, so per-request loggers can be collected. */
  descendants: Set<WeakRef<Logger>>;
  adopted: number;
}

/** Dead references are swept every this many adoptions, so the sets stay small. */
const SWEEP_EVERY = 1024;

/** Logger names the API accepts: dotted segments of letters, digits, `_`, `$` and `-` (Java class names, `omnibus.herder`). */
export const LOGGER_NAME_PATTERN = /^[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*$/;
export const MAX_LOGGER_NAME_LENGTH = 255;
/** Most loggers `PUT /admin/loggers/{name}` may create; each is kept for the worker's life. */
export const MAX_API_LOGGERS = 1000;

export class LoggerRegistry {
  private readonly entries = new Map<string, Entry>();
  /** Levels set through the API, by namespace, so that loggers created later inherit them. */
  private readonly explicit = new Map<string, string>();
  /** Loggers the API created (the runtime's own are not counted). */
  private readonly createdThroughApi = new Set<string>();

  constructor(root: Logger) {
    this.entries.set(ROOT, this.entryFor(root));
  }

  /** The logger called `name` (created on first use, at its namespace's current level). */
  get(name: string): Logger {
    if (name === ROOT) return this.root;
    const existing = this.entries.get(name);
    if (existing) return existing.logger;
    const logger = this.root.child({ logger: name });
    const inherited = this.inheritedLevel(name);
    if (inherited !== undefined) logger.level = inherited;
    this.entries.set(name, this.entryFor(logger));
    return logger;
  }

  /**
   * pino calls `onChild` of the logger a child is made from; children inherit the property
   * through their prototype, so every descendant of `logger` reports to this entry.
   */
  private entryFor(logger: Logger): Entry {
    const entry: Entry = { logger, lastModified: null, descendants: new Set(), adopted: 0 };
    logger.onChild = (child: Logger) => {
      entry.descendants.add(new WeakRef(child));
      entry.adopted += 1;
      if (entry.adopted % SWEEP_EVERY === 0) {
        for (const ref of entry.descendants) if (ref.deref() === undefined) entry.descendants.delete(ref);
      }
    };
    return entry;
  }

  get root(): Logger {
    return (this.entries.get(ROOT) as Entry).logger;
  }

  /** Every logger this worker has, with its level. */
  levels(): Record<string, LoggerLevel> {
    const names = [...this.entries.keys()].sort((a, b) => (a === ROOT ? -1 : b === ROOT ? 1 : a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(names.map((name) => [name, this.describe(name) as LoggerLevel]));
  }

  describe(name: string): LoggerLevel | undefined {
    const entry = this.entries.get(name);
    if (!entry) return undefined;
    return { level: PINO_TO_LOG4J[entry.logger.level] ?? entry.logger.level.toUpperCase(), last_modified: entry.lastModified };
  }

  /**
   * Sets `namespace` and every logger under it to a log4j level (case-insensitive); returns the
   * names of the loggers changed. Unknown level names throw (Kafka answers them with 404).
   */
  setLevel(namespace: string, log4jLevel: string): string[] {
    const level = LOG4J_TO_PINO[log4jLevel.toUpperCase()];
    if (level === undefined) throw coreError('OMNI_ERR_LOGGER_LEVEL_INVALID', { level: log4jLevel });
    if (namespace !== ROOT && !this.entries.has(namespace)) {
      // Every name set is kept: a caller must not be able to grow the registry without bound.
      if (namespace.length > MAX_LOGGER_NAME_LENGTH || !LOGGER_NAME_PATTERN.test(namespace)) {
        throw coreError('OMNI_ERR_LOGGER_NAME_INVALID', { max: MAX_LOGGER_NAME_LENGTH });
      }
      if (this.createdThroughApi.size >= MAX_API_LOGGERS) throw coreError('OMNI_ERR_LOGGER_LIMIT', { max: MAX_API_LOGGERS });
      this.createdThroughApi.add(namespace);
      this.get(namespace);
    }
    const now = Date.now();
    const affected: string[] = [];
    for (const [name, entry] of this.entries) {
      if (namespace === ROOT || name === namespace || name.startsWith(`${namespace}.`)) {
        entry.logger.level = level;
        for (const ref of entry.descendants) {
          const child = ref.deref();
          if (child) child.level = level;
          else entry.descendants.delete(ref);
        }
        entry.lastModified = now;
        affected.push(name);
      }
    }
    if (namespace === ROOT) this.explicit.clear();
    else for (const name of this.explicit.keys()) if (name.startsWith(`${namespace}.`)) this.explicit.delete(name);
    this.explicit.set(namespace, level);
    return affected.sort();
  }

  private inheritedLevel(name: string): string | undefined {
    let best: string | undefined;
    let bestLength = -1;
    for (const [namespace, level] of this.explicit) {
      const covers = namespace === ROOT || name.startsWith(`${namespace}.`);
      const length = namespace === ROOT ? 0 : namespace.length;
      if (covers && length > bestLength) {
        best = level;
        bestLength = length;
      }
    }
    return best;
  }
}

export function createLoggerRegistry(root: Logger): LoggerRegistry {
  return new LoggerRegistry(root);
}
