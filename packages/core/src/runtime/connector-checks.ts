/**
 * The checks a connector's name, config name and offsets get, wherever a request enters: the
 * REST control plane runs them on the request before anything else, and the herder again on
 * what it is given (it is called directly too, e.g. by a worker started with --connector).
 */
import { coreError } from '../errors.ts';
import type { SourceOffset } from '../store/port.ts';

/** The longest connector name, in UTF-8 bytes. */
export const MAX_CONNECTOR_NAME_BYTES = 255;

const isMap = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

export function checkConnectorName(name: string): void {
  if (name === '') throw coreError('OMNI_ERR_CONNECTOR_NAME_INVALID', { rule: 'not be empty' });
  // Slashes cannot be addressed in /connectors/{name}/… paths; control characters break logs and terminals.
  if (/[\u0000-\u001f\u007f/]/.test(name)) {
    throw coreError('OMNI_ERR_CONNECTOR_NAME_INVALID', { rule: 'not contain control characters or slashes' });
  }
  if (Buffer.byteLength(name, 'utf8') > MAX_CONNECTOR_NAME_BYTES) {
    throw coreError('OMNI_ERR_CONNECTOR_NAME_INVALID', { rule: `be at most ${MAX_CONNECTOR_NAME_BYTES} bytes long` });
  }
}

/**
 * Kafka's name rule: the `name` in a config, if any (null counts as none), must be the
 * connector's; the connector's name is then put there.
 */
export function withConfigName<T extends Record<string, unknown>>(name: string, config: T): T & { name: string } {
  if (config.name !== undefined && config.name !== null && config.name !== name) {
    throw coreError('OMNI_ERR_CONNECTOR_CONFIG_INVALID', {
      problem: `Connector name configuration (${String(config.name)}) doesn't match connector name in the URL (${name})`,
    });
  }
  (config as Record<string, unknown>).name = name;
  return config as T & { name: string };
}

/**
 * The entries of an alter-offsets request: a non-empty list of `{partition, offset}` with the
 * partition a JSON object and the offset a JSON object, or null to reset that partition
 * (Kafka's KIP-875). What a partition and an offset hold depends on the connector's type.
 */
export function checkOffsets(offsets: unknown): SourceOffset[] {
  if (!Array.isArray(offsets) || offsets.length === 0) {
    throw coreError('OMNI_ERR_OFFSETS_MISSING', {});
  }
  return offsets.map((item: unknown, index) => {
    if (!isMap(item) || !isMap(item.partition)) throw coreError('OMNI_ERR_OFFSETS_INVALID', { problem: `offsets[${index}].partition must be a JSON object` });
    if (item.offset !== null && !isMap(item.offset)) {
      throw coreError('OMNI_ERR_OFFSETS_INVALID', { problem: `offsets[${index}].offset must be a JSON object, or null to reset the partition` });
    }
    return { partition: item.partition, offset: item.offset as Record<string, unknown> };
  });
}
