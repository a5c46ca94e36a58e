/**
 * Opens the store a URL names: `lmdb:<dir>` (embedded, one machine) or
 * `cql://host1,host2:9042/keyspace?dc=<datacenter>` (ScyllaDB or Cassandra). The store still
 * needs `init()`, which creates or migrates its schema.
 */
import type { Logger } from 'pino';
import { coreError } from '../errors.ts';
import { CqlStore, parseCqlUrl } from './cql.ts';
import { LmdbStore } from './lmdb.ts';
import type { Store } from './port.ts';

export interface OpenStoreOptions {
  logger?: Logger;
}

export function openStore(url: string, options: OpenStoreOptions = {}): Store {
  const trimmed = url.trim();
  if (/^lmdb:/i.test(trimmed)) {
    // lmdb:/abs/dir, lmdb:relative/dir, and the URL-ish lmdb:///abs/dir or lmdb://./dir.
    const path = trimmed.replace(/^lmdb:(\/\/(?=[/.]))?/i, '');
    if (path === '') throw coreError('OMNI_ERR_STORE_URL_INVALID', { problem: `invalid LMDB store URL "${url}": the directory is missing (expected lmdb:<dir>)` });
    return new LmdbStore(path);
  }
  if (/^cql:/i.test(trimmed)) return new CqlStore({ ...parseCqlUrl(trimmed), logger: options.logger });
  throw coreError('OMNI_ERR_STORE_URL_INVALID', {
    problem: `unsupported store URL "${url.replace(/\/\/[^@/]*@/, '//***@')}": use lmdb:<dir> or cql://host1,host2:9042/keyspace?dc=<datacenter>`,
  });
}
