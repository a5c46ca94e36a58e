/**
 * The CQL store's URL (`cql://[user:password@]host1,host2[:port]/keyspace?dc=…&…`): what it may
 * say and the store options it parses into.
 */
import cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import { coreError, type CoreError } from '../errors.ts';

const { types } = cassandra;

export const CONSISTENCIES: Record<string, number> = {
  ANY: types.consistencies.any,
  ONE: types.consistencies.one,
  TWO: types.consistencies.two,
  THREE: types.consistencies.three,
  QUORUM: types.consistencies.quorum,
  ALL: types.consistencies.all,
  LOCAL_QUORUM: types.consistencies.localQuorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  LOCAL_ONE: types.consistencies.localOne,
};
export const SERIAL_CONSISTENCIES: Record<string, number> = {
  SERIAL: types.consistencies.serial,
  LOCAL_SERIAL: types.consistencies.localSerial,
};

export interface CqlStoreOptions {
  /** `host` or `host:port`, as cassandra-driver takes them. */
  contactPoints: string[];
  /** Port of the contact points that name none. */
  port: number;
  keyspace: string;
  localDataCenter: string;
  credentials?: { username: string; password: string };
  /** Consistency of plain reads and writes, by name (LOCAL_QUORUM, QUORUM, ONE…). */
  consistency: string;
  /**
   * Consistency of the Paxos phase of lightweight transactions: SERIAL or LOCAL_SERIAL (the
   * default on a replicated keyspace; SERIAL on one of a single replica).
   */
  serialConsistency: string;
  /** The keyspace's replication map, as a CQL literal; used only when the keyspace is created. */
  replication: string;
  logger?: Logger;
}

const urlError = (url: string, problem: string): CoreError =>
  coreError('OMNI_ERR_STORE_URL_INVALID', {
    problem:
      `invalid CQL store URL "${url.replace(/\/\/[^@/]*@/, '//***@')}": ${problem} ` +
      '(expected cql://host1,host2:9042/keyspace?dc=datacenter1[&user=…&password=…&replication=3&consistency=LOCAL_QUORUM&serial=LOCAL_SERIAL])',
  });

/** Parses `cql://[user:password@]host1,host2[:port]/keyspace?dc=…&…` into store options. */
export function parseCqlUrl(url: string): CqlStoreOptions {
  const match = /^cql:\/\/(?:([^@/?#]*)@)?([^/?#]+)(?:\/([^/?#]*))?(?:\?([^#]*))?$/i.exec(url);
  if (!match) throw urlError(url, 'it does not have the form cql://hosts/keyspace?dc=…');
  const [, userInfo, hostList, keyspacePart, query] = match;
  const params = new URLSearchParams(query ?? '');
  const known = new Set(['dc', 'user', 'password', 'consistency', 'serial', 'replication']);
  for (const key of params.keys()) if (!known.has(key)) throw urlError(url, `unknown parameter "${key}"`);

  let port = 9042;
  const contactPoints: string[] = [];
  for (const host of hostList!.split(',')) {
    const hostMatch = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(host.trim());
    if (!hostMatch) throw urlError(url, `"${host}" is not a host or host:port`);
    if (hostMatch[2] !== undefined) {
      port = Number(hostMatch[2]);
      if (!(port >= 1 && port <= 65_535)) throw urlError(url, `port ${hostMatch[2]} is out of range`);
    }
    contactPoints.push(host.trim());
  }

  const keyspace = decodeURIComponent(keyspacePart ?? '');
  if (!/^[A-Za-z][A-Za-z0-9_]{0,47}$/.test(keyspace)) {
    throw urlError(url, keyspace ? `"${keyspace}" is not a keyspace name (a letter, then letters, digits or _, at most 48)` : 'the keyspace is missing');
  }
  const localDataCenter = params.get('dc');
  if (!localDataCenter) throw urlError(url, 'the local data center is missing: add ?dc=<datacenter>');

  const consistency = (params.get('consistency') ?? 'LOCAL_QUORUM').toUpperCase();
  if (CONSISTENCIES[consistency] === undefined) throw urlError(url, `consistency must be one of ${Object.keys(CONSISTENCIES).join(', ')}`);
  const replication = parseReplication(url, params.get('replication'));
  // On a replicated keyspace Paxos stays inside the local data center, as the writes' quorum
  // does; a keyspace of one replica keeps SERIAL, as before replication could be chosen.
  const serialConsistency = (params.get('serial') ?? (replication.factor > 1 ? 'LOCAL_SERIAL' : 'SERIAL')).toUpperCase();
  if (SERIAL_CONSISTENCIES[serialConsistency] === undefined) throw urlError(url, 'serial must be SERIAL or LOCAL_SERIAL');

  let username = params.get('user') ?? undefined;
  let password = params.get('password') ?? undefined;
  if (userInfo) {
    const colon = userInfo.indexOf(':');
    username ??= decodeURIComponent(colon < 0 ? userInfo : userInfo.slice(0, colon));
    password ??= colon < 0 ? undefined : decodeURIComponent(userInfo.slice(colon + 1));
  }
  if ((username === undefined) !== (password === undefined)) throw urlError(url, 'give both user and password, or neither');

  return {
    contactPoints,
    port,
    keyspace: keyspace.toLowerCase(),
    localDataCenter,
    credentials: username !== undefined && password !== undefined ? { username, password } : undefined,
    consistency,
    serialConsistency,
    replication: replication.cql,
  };
}

const REPLICATION_FORMS = 'replication must be a factor from 1 to 99 (SimpleStrategy) or dc1:3,dc2:3 (NetworkTopologyStrategy)';

/**
 * `?replication=3` (SimpleStrategy) or `?replication=dc1:3,dc2:3` (NetworkTopologyStrategy) as a
 * CQL map literal, and the largest factor in it (the one that says whether data is replicated).
 */
function parseReplication(url: string, value: string | null): { cql: string; factor: number } {
  const factorOf = (digits: string): number => {
    const factor = Number(digits);
    if (!(factor >= 1 && factor <= 99)) throw urlError(url, REPLICATION_FORMS);
    return factor;
  };
  if (value === null) return { cql: "{'class': 'SimpleStrategy', 'replication_factor': 1}", factor: 1 };
  if (/^\d+$/.test(value)) {
    const factor = factorOf(value);
    return { cql: `{'class': 'SimpleStrategy', 'replication_factor': ${factor}}`, factor };
  }
  const perDc = value.split(',').map((part) => /^([A-Za-z0-9_.-]+):(\d+)$/.exec(part.trim()));
  if (perDc.some((part) => !part)) throw urlError(url, REPLICATION_FORMS);
  const entries = perDc.map((part) => [part![1]!, factorOf(part![2]!)] as const);
  if (new Set(entries.map(([dc]) => dc)).size !== entries.length) throw urlError(url, 'replication names a data center twice');
  return {
    cql: `{'class': 'NetworkTopologyStrategy', ${entries.map(([dc, factor]) => `'${dc}': ${factor}`).join(', ')}}`,
    factor: Math.max(...entries.map(([, factor]) => factor)),
  };
}
