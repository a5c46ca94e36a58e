/**
 * The herder answers the control plane from the store: connector configs, target states,
 * task configs and statuses all live there, so any worker can take any request (Kafka's
 * distributed herder forwards writes to a leader; here the store's LWTs do that job) and the
 * reconcile loop of every worker picks the change up: this worker's at once, the others' at
 * their next heartbeat, told by the connectors version every write bumps.
 *
 * Every write validates first and writes only if the whole request is valid. Configs are
 * stored as given — `${env:…}`/`${file:…}` placeholders unresolved — and task configs keep
 * them too (values computed from a resolved secret are turned back into their placeholder).
 */
import { inboundSettingsOf, isConfigError, isPassword, type ConfigInfos, type ConfigSpec, type Connector, type DeliveryUpdate, type InboundMessage, type SinkConnector } from '@omnibus/sdk';
import type { Logger } from 'pino';
import { CoreError, coreError } from '../errors.ts';
import { activeTopics, resetActiveTopics } from '../bus/active-topics.ts';
import { applyDeliveryUpdates as applyReceipts } from '../bus/receipts.ts';
import { DeliveryEventPublisher } from '../bus/delivery-events.ts';
import { InboundMessages } from '../bus/inbound.ts';
import type { Producer } from '../bus/producer.ts';
import { watermarkKeys } from '../bus/priority.ts';
import { canonicalJson } from '../store/canonical-json.ts';
import type { ConnectorRecord, ConnectorState, SourceOffset, StatusRecord, Store, TargetState } from '../store/port.ts';
import { restorePlaceholders, Scrubber, UnresolvedConfigError, type ConfigProviders } from './config-providers.ts';
import { checkOffsets, withConfigName } from './connector-checks.ts';
import { endpointChanges, fullSpec, HIDDEN, isSecretKey } from './connector-config.ts';
import type { ConnectorInfo, ConnectorStateInfo, ConnectorType, Herder, PluginRegistry, RestartOptions } from './types.ts';
import { BUILTIN_CATALOG } from '../transforms/catalog.ts';
import { mergeChainInfos, validateChain } from '../transforms/chain.ts';

export interface StoreHerderOptions {
  store: Store;
  plugins: PluginRegistry;
  providers: ConfigProviders;
  /** This worker's id (advertised host:port); a function because the port is known only once listening. */
  workerId: () => string;
  logger: Logger;
  /** Called after every write the workers must act on, so that the local reconcile runs at once (the others learn of it from the store). */
  onChange?: (connector: string) => void;
  /** The consumer name under which the bus keeps a sink's shard watermarks. */
  sinkConsumer?: (connector: string) => string;
  /** Produces delivery events (a connector's `delivery.events.topic`); without it, receipts publish none. */
  producer?: Producer;
}

const CONFIG_INVALID = 'OMNI_ERR_CONNECTOR_CONFIG_INVALID' as const;
const CONNECTOR_NOT_FOUND = 'OMNI_ERR_CONNECTOR_NOT_FOUND' as const;
const NULL_VALUE = 'Null value can not be supplied as the configuration value.';

export class StoreHerder implements Herder {
  private readonly store: Store;
  private readonly plugins: PluginRegistry;
  private readonly providers: ConfigProviders;
  private readonly logger: Logger;
  private readonly deliveryEvents: DeliveryEventPublisher | undefined;
  private readonly inbound: InboundMessages;

  constructor(private readonly options: StoreHerderOptions) {
    this.deliveryEvents = options.producer ? new DeliveryEventPublisher(options.store, options.producer) : undefined;
    this.inbound = new InboundMessages(options.store, options.producer);
    this.store = options.store;
    this.plugins = options.plugins;
    this.providers = options.providers;
    this.logger = options.logger.child({ component: 'herder' });
  }

  // ---- reads -------------------------------------------------------------------------------

  async connectorNames(): Promise<string[]> {
    return (await this.store.listConnectors()).map((c) => c.name).sort();
  }

  async connectorInfo(name: string): Promise<ConnectorInfo> {
    return this.infoOf(await this.existing(name, `Connector ${name} not found`));
  }

  async connectorStatus(name: string): Promise<ConnectorStateInfo> {
    const record = await this.existing(name, `No status found for connector ${name}`);
    return this.statusOf(record, await this.store.listStatuses(name));
  }

  async taskConfigs(name: string): Promise<Array<{ id: { connector: string; task: number }; config: Record<string, string> }>> {
    const record = await this.existing(name, `Connector ${name} not found`);
    return record.taskConfigs.map((config, task) => ({ id: { connector: name, task }, config }));
  }

  // ---- config writes -----------------------------------------------------------------------

  async createConnector(name: string, config: Record<string, string>, initialState: TargetState = 'STARTED'): Promise<ConnectorInfo> {
    const given: Record<string, string> = { ...config };
    this.restoreHidden(name, given, undefined, given);
    const { connector, config: checked } = await this.validateForWrite(name, given);
    const now = Date.now();
    const record: ConnectorRecord = {
      name,
      config: checked,
      targetState: initialState,
      taskConfigs: initialState === 'STOPPED' ? [] : await this.computeTaskConfigs(name, connector, checked),
      generation: 1,
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.store.createConnector(record))) throw coreError('OMNI_ERR_CONNECTOR_EXISTS', { connector: name });
    this.logger.info({ connector: name, class: checked['connector.class'], targetState: initialState }, 'connector created');
    await this.changed(name);
    return this.infoOf(record);
  }

  async putConnectorConfig(name: string, config: Record<string, string>): Promise<{ created: boolean; info: ConnectorInfo }> {
    const existing = await this.store.getConnector(name);
    const given: Record<string, string> = { ...config };
    this.restoreHidden(name, given, existing?.config, given);
    const { connector, config: checked } = await this.validateForWrite(name, given);
    if (!existing) {
      try {
        return { created: true, info: await this.createConnector(name, checked) };
      } catch (error) {
        // Created by another worker between our read and our LWT: this PUT becomes an update.
        if (!(error instanceof CoreError && error.code === 'OMNI_ERR_CONNECTOR_EXISTS')) throw error;
      }
    }
    // The same config again (a worker restarted with --connector) changes nothing: no new generation.
    if (existing && sameStrings(existing.config, checked)) return { created: false, info: this.infoOf(existing) };
    return { created: false, info: await this.updateConfig(name, connector, checked) };
  }

  async patchConnectorConfig(name: string, patch: Record<string, string | null>): Promise<ConnectorInfo> {
    const existing = await this.existing(name, `Connector ${name} not found`);
    const merged: Record<string, unknown> = { ...existing.config };
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete merged[key];
      else merged[key] = value;
    }
    this.restoreHidden(name, merged, existing.config, merged, patch);
    const dropped = this.dropSecretsOnMove(existing.config, merged as Record<string, string | null>, patch);
    const { connector, config } = await this.validateForWrite(
      name,
      merged,
      dropped.length > 0 ? `Stored secrets dropped because the connector now sends elsewhere (send them again if they are needed): ${dropped.join(', ')}` : undefined,
    );
    return this.updateConfig(name, connector, config);
  }

  /**
   * `[hidden]` sent back for a secret (what a GET shows) stands for the stored value, taken from
   * the same read of the connector the write is checked against; unless the write moves the
   * connector (its class or an endpoint-like key changes): a stored secret is never sent to
   * another endpoint, so it must be sent again. `sent`: the keys the caller sent (a PATCH's).
   */
  private restoreHidden(
    name: string,
    config: Record<string, unknown>,
    stored: Readonly<Record<string, string>> | undefined,
    next: Readonly<Record<string, unknown>>,
    sent: Readonly<Record<string, unknown>> = config,
  ): void {
    const hidden = Object.keys(sent).filter((key) => sent[key] === HIDDEN);
    if (hidden.length === 0) return;
    const specs = [this.specOf(stored?.['connector.class']), this.specOf(stringOr(next['connector.class']))];
    const moved = stored ? endpointChanges(stored, next as Record<string, string | null>) : [];
    const resend: string[] = [];
    for (const key of hidden) {
      if (!isSecretKey(key, ...specs)) continue;
      const value = stored?.[key];
      if (value === undefined) {
        throw coreError(CONFIG_INVALID, { problem: `${key} of connector ${name} is a secret and "${HIDDEN}" only stands for a stored value; send the secret itself` });
      }
      if (moved.length > 0) resend.push(key);
      else config[key] = value;
    }
    if (resend.length > 0) {
      throw coreError('OMNI_ERR_SECRET_RESEND_REQUIRED', { keys: resend.join(', '), connector: name, changed: moved.join(', ') });
    }
  }

  /**
   * A stored secret is never sent to an endpoint it was not stored for: when a PATCH changes
   * the class or an endpoint-like key (see {@link endpointChanges}), every stored secret it does
   * not send again is dropped (secret by the old class's spec, the new one's, or by name).
   */
  private dropSecretsOnMove(before: Record<string, string>, merged: Record<string, string | null>, patch: Record<string, unknown>): string[] {
    const changed = endpointChanges(before, merged);
    if (changed.length === 0) return [];
    const specs = [this.specOf(before['connector.class']), this.specOf(merged['connector.class'])];
    const dropped = Object.keys(before).filter((key) => !(key in patch) && isSecretKey(key, ...specs));
    for (const key of dropped) delete merged[key];
    if (dropped.length > 0) this.logger.info({ changed, dropped }, 'stored secrets dropped: the connector now sends elsewhere');
    return dropped;
  }

  private specOf(className: string | null | undefined): ConfigSpec<unknown> | undefined {
    const connector = className ? this.plugins.find(className) : undefined;
    return connector ? fullSpec(connector.config as ConfigSpec<unknown>) : undefined;
  }

  async deleteConnector(name: string): Promise<void> {
    await this.existing(name, `Connector ${name} not found`);
    await this.store.deleteConnector(name);
    await this.store.deleteStatuses(name);
    // As Kafka: a connector created again under this name starts with no active topics.
    await resetActiveTopics(this.store, name);
    this.logger.info({ connector: name }, 'connector deleted');
    await this.changed(name);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async setTargetState(name: string, state: TargetState): Promise<void> {
    const record = await this.existing(name, `Unknown connector ${name}`);
    if (record.targetState === state) return;
    const next: ConnectorRecord = { ...record, targetState: state, updatedAt: Date.now() };
    if (state === 'STOPPED') {
      // Kafka: a stopped connector has no tasks; its task set is emptied and rebuilt on resume.
      next.taskConfigs = [];
      next.generation = record.generation + 1;
    } else if (record.targetState === 'STOPPED') {
      const connector = this.plugins.find(record.config['connector.class'] ?? '');
      next.taskConfigs = connector ? await this.computeTaskConfigs(name, connector, record.config) : [];
      next.generation = record.generation + 1;
    }
    await this.store.putConnector(next);
    if (state === 'STOPPED') {
      await this.store.deleteStatuses(name);
      await this.store.putStatus(this.statusRecord(name, null, 'STOPPED', next.generation));
    }
    this.logger.info({ connector: name, from: record.targetState, to: state }, 'connector target state changed');
    await this.changed(name);
  }

  async restartConnector(name: string, options: RestartOptions): Promise<ConnectorStateInfo | undefined> {
    const record = await this.existing(name, `Unknown connector: ${name}`);
    const status = this.statusOf(record, await this.store.listStatuses(name));
    const restartConnector = !options.onlyFailed || status.connector.state === 'FAILED';
    const tasks = options.includeTasks ? status.tasks.filter((t) => !options.onlyFailed || t.state === 'FAILED').map((t) => t.id) : [];
    await this.requestRestart(record, restartConnector, tasks);
    if (!options.includeTasks && !options.onlyFailed) return undefined;
    const restarting = new Set(tasks);
    return {
      ...status,
      connector: restartConnector ? { state: 'RESTARTING', worker_id: status.connector.worker_id } : status.connector,
      tasks: status.tasks.map((t) => (restarting.has(t.id) ? { id: t.id, state: 'RESTARTING', worker_id: t.worker_id } : t)),
    };
  }

  async restartTask(name: string, task: number): Promise<void> {
    const record = await this.existing(name, `Unknown connector: ${name}`);
    if (!Number.isInteger(task) || task < 0 || task >= record.taskConfigs.length) {
      throw coreError('OMNI_ERR_TASK_NOT_FOUND', { connector: name, task });
    }
    await this.requestRestart(record, false, [task]);
  }

  /**
   * Marks the chosen instances RESTARTING and bumps the generation: the workers that run them
   * read the statuses when they see the new generation, and restart what is marked.
   */
  private async requestRestart(record: ConnectorRecord, connector: boolean, tasks: number[]): Promise<void> {
    if (!connector && tasks.length === 0) return;
    const generation = record.generation + 1;
    const statuses = new Map((await this.store.listStatuses(record.name)).map((s) => [s.task, s]));
    const mark = (task: number | null): StatusRecord => ({
      connector: record.name,
      task,
      state: 'RESTARTING',
      workerId: statuses.get(task)?.workerId ?? '',
      generation,
      updatedAt: Date.now(),
    });
    if (connector) await this.store.putStatus(mark(null));
    for (const task of tasks) await this.store.putStatus(mark(task));
    await this.store.putConnector({ ...record, generation, updatedAt: Date.now() });
    this.logger.info({ connector: record.name, restartConnector: connector, tasks }, 'restart requested');
    await this.changed(record.name);
  }

  // ---- validation --------------------------------------------------------------------------

  async validateConfig(pluginClass: string, config: Record<string, unknown>): Promise<ConfigInfos> {
    const strings = this.stringConfig(config, { allowNull: true });
    const className = strings['connector.class'] ?? pluginClass;
    if (!className) throw this.noConnectorType(strings);
    const connector = this.connectorFor(className);
    return this.validateWith(connector, className, strings);
  }

  /** Everything a write checks, in Kafka's order; returns the config to store (name injected). */
  private async validateForWrite(
    name: string,
    given: Record<string, unknown>,
    /** Said after the errors, if any. */
    note?: string,
  ): Promise<{ connector: Connector; config: Record<string, string> }> {
    const config = this.stringConfig(given, { allowNull: true });
    withConfigName(name, config);
    const className = config['connector.class'];
    if (className === undefined || className === null || className.trim() === '') throw this.noConnectorType(config);
    const connector = this.connectorFor(className);
    const infos = await this.validateWith(connector, className, config);
    const errors = infos.configs.flatMap((c) => c.value.errors);
    const nullKeys = Object.keys(config).filter((k) => config[k] === null && !infos.configs.some((c) => c.definition.name === k));
    errors.push(...nullKeys.map(() => NULL_VALUE));
    if (errors.length > 0) {
      throw coreError(CONFIG_INVALID, {
        problem:
          `Connector configuration is invalid and contains the following ${errors.length} error(s):\n${errors.join('\n')}\n` +
          'You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`' +
          (note ? `\n${note}` : ''),
      });
    }
    return { connector, config: config as Record<string, string> };
  }

  /**
   * Kafka's validate response for a config, from the connector's full spec (common keys and
   * its own) and its cross-key checks. Placeholders are resolved where this worker can; a key
   * whose placeholder only another worker can resolve is checked when its task starts.
   */
  private async validateWith(connector: Connector, className: string, config: Record<string, string | null>): Promise<ConfigInfos> {
    const spec = fullSpec(connector.config as ConfigSpec<unknown>);
    const present = Object.fromEntries(Object.entries(config).filter((e): e is [string, string] => e[1] !== null));
    const { config: resolved, unresolvedKeys, scrubber, scrubberFor } = await this.providers.tryResolve(present, (key) => isSecretKey(key, spec));
    const infos = spec.validate(className, resolved);
    // Kafka's transforms/predicates keys: every stage's type, predicate and config, on its key.
    mergeChainInfos(infos, validateChain(resolved, this.plugins.transformCatalog?.() ?? BUILTIN_CATALOG));
    for (const entry of infos.configs) {
      const key = entry.definition.name;
      if (config[key] === null) entry.value.errors = [NULL_VALUE];
      else if (unresolvedKeys.has(key)) entry.value.errors = [];
      // The checks ran on resolved values; what the caller sees names the key and what was
      // written (the placeholder), never a resolved value or a secret.
      const own = scrubberFor(key);
      entry.value.errors = entry.value.errors.map((e) => own.scrub(e));
      if (present[key] !== undefined && resolved[key] !== present[key] && entry.value.value !== HIDDEN) entry.value.value = present[key];
    }
    if (connector.validate && infos.configs.every((c) => c.value.errors.length === 0)) {
      let problems: Record<string, string[]> = {};
      try {
        problems = connector.validate(spec.parse(resolved) as never) ?? {};
      } catch (error) {
        problems = isConfigError(error) ? error.errors : { 'connector.class': [(error as Error).message] };
      }
      for (const [key, messages] of Object.entries(problems)) {
        if (unresolvedKeys.has(key) || messages.length === 0) continue;
        const entry = infos.configs.find((c) => c.definition.name === key) ?? infos.configs.find((c) => c.definition.name === 'connector.class');
        const shown = messages.map((m) => scrubber.scrub(m));
        entry?.value.errors.push(...(entry.definition.name === key ? shown : shown.map((m) => `${key}: ${m}`)));
      }
    }
    infos.error_count = infos.configs.reduce((sum, c) => sum + c.value.errors.length, 0);
    return infos;
  }

  private stringConfig(given: Record<string, unknown>, options: { allowNull: boolean }): Record<string, string | null> {
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      throw coreError(CONFIG_INVALID, { problem: 'Connector configuration must be a JSON object of string values' });
    }
    const wrong = Object.entries(given).filter(([, v]) => typeof v !== 'string' && !(options.allowNull && v === null));
    if (wrong.length > 0) {
      throw coreError(CONFIG_INVALID, { problem: `Connector configuration values must be strings (as Kafka Connect's Map<String, String>): ` +
          wrong.map(([k, v]) => `"${k}" is ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`}`).join(', ') });
    }
    return { ...(given as Record<string, string | null>) };
  }

  private noConnectorType(config: Record<string, string | null>): CoreError {
    // Kafka prints the map as Java's toString does. Without a class there is no one spec to ask:
    // a key any installed class declares secret is hidden, and so is any secret-looking name.
    const specs = this.plugins.list().map((p) => this.specOf(p.class));
    const shown = Object.entries(config)
      .map(([k, v]) => `${k}=${isSecretKey(k, ...specs) ? HIDDEN : String(v)}`)
      .join(', ');
    return coreError('OMNI_ERR_CONNECTOR_CLASS_MISSING', { problem: `Connector config {${shown}} contains no connector type` });
  }

  private connectorFor(className: string): Connector {
    const connector = this.plugins.find(className);
    if (!connector) {
      const known = this.plugins.list().map((p) => p.class);
      throw coreError('OMNI_ERR_CONNECTOR_CLASS_UNKNOWN', { problem: `Failed to find any class that implements Connector and which name matches ${className}, available connectors are: ${known.join(', ') || 'none'}` });
    }
    return connector;
  }

  // ---- task configs ------------------------------------------------------------------------

  /**
   * The connector's task configs as string maps. Without its own `taskConfigs`, a connector
   * gets `tasks.max` copies of its config; with one, it sees the resolved, parsed config and
   * its output keeps the placeholders of the raw config.
   */
  private async computeTaskConfigs(name: string, connector: Connector, raw: Record<string, string>): Promise<Array<Record<string, string>>> {
    const spec = fullSpec(connector.config as ConfigSpec<unknown>);
    const { config: resolved, unresolvedKeys, scrubber } = await this.providers.tryResolve(raw, (key) => isSecretKey(key, spec));
    let maxTasks: number;
    try {
      maxTasks = (spec.parse(resolved) as { 'tasks.max': number })['tasks.max'];
    } catch {
      maxTasks = Math.max(1, Number.parseInt(raw['tasks.max'] ?? '1', 10) || 1);
    }
    const copies = () => Array.from({ length: maxTasks }, () => ({ ...raw }));
    if (!connector.taskConfigs) return copies();
    let parsed: unknown;
    try {
      parsed = spec.parse(resolved);
    } catch (error) {
      // Only a key this worker cannot resolve can fail here (validation passed): let the
      // workers that resolve it split the work as copies, and fail the task if they cannot.
      if (unresolvedKeys.size > 0) return copies();
      throw coreError(CONFIG_INVALID, { problem: `Connector ${name} has an invalid config: ${scrubber.scrub((error as Error).message)}` });
    }
    let computed: Array<Record<string, unknown>>;
    try {
      computed = (connector.taskConfigs as (c: unknown, max: number) => Array<Record<string, unknown>>)(parsed, maxTasks);
    } catch (error) {
      throw coreError(CONFIG_INVALID, { problem: `Connector ${name} could not compute its task configs: ${scrubber.scrub((error as Error).message)}` });
    }
    if (computed.length > maxTasks) {
      this.logger.warn({ connector: name, computed: computed.length, maxTasks }, 'connector returned more task configs than tasks.max; extra ones dropped');
      computed = computed.slice(0, maxTasks);
    }
    // The connector's output over the config it was given, so every task config still names its class and topics.
    return computed.map((task) => restorePlaceholders(raw, resolved, { ...resolved, ...stringifyValues(task) }));
  }

  private async updateConfig(name: string, connector: Connector, config: Record<string, string>): Promise<ConnectorInfo> {
    const existing = await this.existing(name, `Connector ${name} not found`);
    const record: ConnectorRecord = {
      ...existing,
      config,
      taskConfigs: existing.targetState === 'STOPPED' ? [] : await this.computeTaskConfigs(name, connector, config),
      generation: existing.generation + 1,
      updatedAt: Date.now(),
    };
    await this.store.putConnector(record);
    this.logger.info({ connector: name, generation: record.generation }, 'connector config updated');
    await this.changed(name);
    return this.infoOf(record);
  }

  // ---- offsets -----------------------------------------------------------------------------

  async offsets(name: string): Promise<SourceOffset[]> {
    const record = await this.existing(name, `Connector ${name} not found`);
    const type = this.typeOf(record);
    if (type === 'source') return this.store.getSourceOffsets(name);
    if (type !== 'sink') return [];
    const consumer = this.sinkConsumer(name);
    const out: SourceOffset[] = [];
    for (const topic of await this.sinkTopics(record)) {
      for (let shard = 0; shard < topic.shards; shard++) {
        const watermark = await this.store.getWatermark(consumer, topic.name, shard);
        if (watermark !== undefined) out.push({ partition: { topic: topic.name, shard }, offset: { watermark } });
      }
    }
    return out;
  }

  async alterOffsets(name: string, offsets: SourceOffset[]): Promise<void> {
    const record = await this.stoppedForOffsets(name);
    const checked = checkOffsets(offsets);
    const type = this.typeOf(record);
    if (type === 'source') return this.alterSourceOffsets(name, checked);
    if (type === 'sink') return this.alterSinkOffsets(record, checked);
    throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `The offsets of connector ${name} cannot be altered: its class ${record.config['connector.class']} is not installed` });
  }

  async resetOffsets(name: string): Promise<void> {
    const record = await this.stoppedForOffsets(name);
    const type = this.typeOf(record);
    if (type === 'source') {
      await this.store.deleteSourceOffsets(name);
    } else if (type === 'sink') {
      const consumer = this.sinkConsumer(name);
      for (const topic of await this.sinkTopics(record)) {
        for (let shard = 0; shard < topic.shards; shard++) {
          // Each priority lane's watermark too (bus/priority-lanes.ts).
          for (const key of watermarkKeys(topic.name)) {
            if ((await this.store.getWatermark(consumer, key, shard)) !== undefined) await this.store.setWatermark(consumer, key, shard, 0);
          }
        }
      }
    }
    this.logger.info({ connector: name }, 'connector offsets reset');
  }

  private async stoppedForOffsets(name: string): Promise<ConnectorRecord> {
    const record = await this.existing(name, `Connector ${name} not found`);
    if (record.targetState !== 'STOPPED' || record.taskConfigs.length > 0) {
      throw coreError('OMNI_ERR_CONNECTOR_NOT_STOPPED', { connector: name });
    }
    return record;
  }

  /** `offsets` as checkOffsets returns them: partitions are maps, offsets maps or null. */
  private async alterSourceOffsets(name: string, offsets: SourceOffset[]): Promise<void> {
    const byPartition = new Map((await this.store.getSourceOffsets(name)).map((o) => [canonicalJson(o.partition), o]));
    let removed = false;
    for (const { partition, offset } of offsets) {
      const key = canonicalJson(partition);
      if (offset === null) removed = byPartition.delete(key) || removed;
      else byPartition.set(key, { partition, offset });
    }
    if (removed) await this.store.deleteSourceOffsets(name);
    const kept = [...byPartition.values()];
    if (kept.length > 0) await this.store.putSourceOffsets(name, kept);
    this.logger.info({ connector: name, partitions: offsets.length }, 'source offsets altered');
  }

  private async alterSinkOffsets(record: ConnectorRecord, offsets: SourceOffset[]): Promise<void> {
    const topics = new Map((await this.sinkTopics(record)).map((t) => [t.name, t]));
    const writes: Array<{ topic: string; shard: number; watermark: number }> = [];
    for (const [i, { partition, offset }] of offsets.entries()) {
      const p = partition as { topic?: unknown; shard?: unknown } | null;
      if (!isPlainObject(p) || typeof p.topic !== 'string' || !Number.isInteger(p.shard)) {
        throw coreError('OMNI_ERR_OFFSETS_INVALID', { problem: `Offset entry ${i}: a sink partition is {"topic": <string>, "shard": <integer>}` });
      }
      const topic = topics.get(p.topic);
      if (!topic) throw coreError('OMNI_ERR_OFFSETS_INVALID', { problem: `Offset entry ${i}: connector ${record.name} does not consume topic ${p.topic}` });
      const shard = p.shard as number;
      if (shard < 0 || shard >= topic.shards) {
        throw coreError('OMNI_ERR_OFFSETS_INVALID', { problem: `Offset entry ${i}: topic ${topic.name} has shards 0 to ${topic.shards - 1}, not ${shard}` });
      }
      const watermark = offset === null ? 0 : (offset as { watermark?: unknown } | undefined)?.watermark;
      if (typeof watermark !== 'number' || !Number.isSafeInteger(watermark) || watermark < 0) {
        throw coreError('OMNI_ERR_OFFSETS_INVALID', { problem: `Offset entry ${i}: a sink offset is {"watermark": <ms since the epoch>}, or null to reset the shard` });
      }
      writes.push({ topic: topic.name, shard, watermark });
    }
    const consumer = this.sinkConsumer(record.name);
    // A shard's offset is where each of its priority lanes resumes (bus/priority-lanes.ts).
    for (const w of writes) for (const key of watermarkKeys(w.topic)) await this.store.setWatermark(consumer, key, w.shard, w.watermark);
    this.logger.info({ connector: record.name, shards: writes.length }, 'sink offsets altered');
  }

  private async sinkTopics(record: ConnectorRecord) {
    const names = (record.config.topics ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    const topics = await Promise.all(names.map((t) => this.store.getTopic(t)));
    return topics.filter((t) => t !== undefined);
  }

  private sinkConsumer(name: string): string {
    return this.options.sinkConsumer?.(name) ?? name;
  }

  // ---- topic tracking ----------------------------------------------------------------------

  async activeTopics(name: string): Promise<string[]> {
    await this.existing(name, `Connector ${name} not found`);
    return activeTopics(this.store, name);
  }

  async resetActiveTopics(name: string): Promise<void> {
    await this.existing(name, `Connector ${name} not found`);
    await resetActiveTopics(this.store, name);
    this.logger.info({ connector: name }, 'connector active topics reset');
  }

  // ---- webhooks and receipts ---------------------------------------------------------------

  async webhookTarget(name: string): Promise<{ connector: SinkConnector; config: unknown; topics: readonly string[] } | undefined> {
    const record = await this.store.getConnector(name);
    if (!record) return undefined;
    const connector = this.plugins.find(record.config['connector.class'] ?? '');
    if (!connector || connector.type !== 'sink' || !connector.webhook) return undefined;
    const spec = fullSpec(connector.config as ConfigSpec<unknown>);
    // The caller of a webhook is anyone on the internet: the cause (which key, which file,
    // which value) goes to the log only, scrubbed.
    const unavailable = (error: unknown, scrubber: Scrubber) => {
      this.logger.warn({ connector: name, err: scrubber.error(error) }, 'webhooks of the connector cannot be verified: its config does not resolve or parse');
      return coreError('OMNI_ERR_WEBHOOK_UNAVAILABLE', {});
    };
    let resolved: Awaited<ReturnType<ConfigProviders['resolveScrubbed']>>;
    try {
      resolved = await this.providers.resolveScrubbed(record.config, (key) => isSecretKey(key, spec));
    } catch (error) {
      if (error instanceof UnresolvedConfigError) throw unavailable(error, Scrubber.NONE);
      throw error;
    }
    let config: unknown;
    try {
      config = spec.parse(resolved.config);
    } catch (error) {
      throw unavailable(error, resolved.scrubber);
    }
    return { connector, config, topics: (config as { topics: string[] }).topics };
  }

  /**
   * The bus's receipt state machine (one for webhooks and for receipts tasks report), which
   * never moves a delivery back. `topics`: the connector's, where its messages are.
   */
  async applyDeliveryUpdates(connector: string, updates: DeliveryUpdate[], topics?: readonly string[], eventsTopic?: string): Promise<void> {
    const events = this.deliveryEvents;
    const result = await applyReceipts(this.store, connector, updates, this.options.workerId(), {
      within: topics,
      logger: this.logger,
      ...(this.options.producer?.signals ? { signals: this.options.producer.signals } : {}),
      ...(eventsTopic && events ? { publish: (changes) => events.publish(eventsTopic, changes) } : {}),
    });
    if (result.unmatched > 0 || result.ignored > 0) this.logger.info({ connector, ...result }, 'delivery receipts applied');
  }

  async acceptInbound(connector: string, config: Record<string, unknown>, messages: InboundMessage[]): Promise<void> {
    await this.inbound.accept(connector, inboundSettingsOf(config), messages, this.logger.child({ connector }));
  }

  // ---- helpers -----------------------------------------------------------------------------

  private async existing(name: string, message: string): Promise<ConnectorRecord> {
    const record = await this.store.getConnector(name);
    if (!record) throw coreError(CONNECTOR_NOT_FOUND, { problem: message });
    return record;
  }

  private typeOf(record: ConnectorRecord): ConnectorType {
    return this.plugins.find(record.config['connector.class'] ?? '')?.type ?? 'unknown';
  }

  private infoOf(record: ConnectorRecord): ConnectorInfo {
    return {
      name: record.name,
      config: record.config,
      tasks: record.taskConfigs.map((_, task) => ({ connector: record.name, task })),
      type: this.typeOf(record),
    };
  }

  /** Statuses of the instances that exist now; one no worker has reported yet is UNASSIGNED. */
  private statusOf(record: ConnectorRecord, statuses: StatusRecord[]): ConnectorStateInfo {
    const byTask = new Map(statuses.map((s) => [s.task, s]));
    const stateOf = (task: number | null) => {
      const s = byTask.get(task);
      if (!s) return { state: 'UNASSIGNED' as ConnectorState, worker_id: '' };
      return s.trace ? { state: s.state, worker_id: s.workerId, trace: s.trace } : { state: s.state, worker_id: s.workerId };
    };
    return {
      name: record.name,
      connector: stateOf(null),
      tasks: record.taskConfigs.map((_, id) => ({ id, ...stateOf(id) })),
      type: this.typeOf(record),
    };
  }

  private statusRecord(connector: string, task: number | null, state: ConnectorState, generation: number): StatusRecord {
    return { connector, task, state, workerId: this.options.workerId(), generation, updatedAt: Date.now() };
  }

  /**
   * After every connector write: this worker reconciles at once, and the others at their next
   * heartbeat, whose cluster view then shows a new connectors version.
   */
  private async changed(name: string): Promise<void> {
    this.options.onChange?.(name);
    try {
      await this.store.bumpConnectorsVersion();
    } catch (error) {
      // The write itself went through: failing the request would only invite a retry that conflicts.
      this.logger.warn({ err: error, connector: name }, 'could not announce a connector change; other workers will see it at their next periodic re-read');
    }
  }
}

/** Connector output as Kafka's Map<String, String>: secrets in clear (they are restored to placeholders after). */
function stringifyValues(config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined || value === null) continue;
    if (isPassword(value)) out[key] = value.value();
    else if (Array.isArray(value)) out[key] = value.map(String).join(',');
    else if (typeof value === 'object') out[key] = JSON.stringify(value);
    else out[key] = String(value);
  }
  return out;
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sameStrings(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
