import { describe, expect, it } from 'vitest';
import { CqlStore, parseCqlUrl } from '../../src/store/cql.ts';
import { LmdbStore } from '../../src/store/lmdb.ts';
import { openStore } from '../../src/store/open.ts';

describe('openStore', () => {
  it('opens LMDB for lmdb:<dir>, relative or absolute', () => {
    expect(openStore('lmdb:/var/lib/omnibus')).toBeInstanceOf(LmdbStore);
    expect(openStore('lmdb:/var/lib/omnibus').description).toBe('lmdb:/var/lib/omnibus');
    expect(openStore('lmdb:///var/lib/omnibus').description).toBe('lmdb:/var/lib/omnibus');
    expect(openStore('lmdb:.omnibus/data').description).toBe(`lmdb:${process.cwd()}/.omnibus/data`);
  });

  it('opens CQL for cql://…, describing it without credentials', () => {
    const store = openStore('cql://alice:s3cret@10.0.0.1,10.0.0.2:9142/omnibus?dc=dc1');
    expect(store).toBeInstanceOf(CqlStore);
    expect(store.description).toBe('cql://10.0.0.1,10.0.0.2:9142/omnibus');
    expect(store.description).not.toContain('s3cret');
  });

  it('refuses what it cannot open, saying what it expects', () => {
    expect(() => openStore('redis://localhost')).toThrow(/use lmdb:<dir> or cql:\/\//);
    expect(() => openStore('lmdb:')).toThrow(/directory is missing/);
    expect(() => openStore('cql://u:pw@host/ks')).toThrow(/dc=/);
    expect(() => openStore('cql://u:pw@host/ks')).not.toThrow(/pw/);
  });
});

describe('parseCqlUrl', () => {
  it('reads hosts, port, keyspace, data center and defaults', () => {
    expect(parseCqlUrl('cql://host1,host2:9043/Omnibus?dc=datacenter1')).toMatchObject({
      contactPoints: ['host1', 'host2:9043'],
      port: 9043,
      keyspace: 'omnibus',
      localDataCenter: 'datacenter1',
      consistency: 'LOCAL_QUORUM',
      serialConsistency: 'SERIAL',
      replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}",
      credentials: undefined,
    });
    expect(parseCqlUrl('cql://[::1]:9042/ks?dc=d').contactPoints).toEqual(['[::1]:9042']);
    expect(parseCqlUrl('cql://h/ks?dc=d').port).toBe(9042);
  });

  it('reads credentials, consistency and replication', () => {
    const options = parseCqlUrl('cql://h/ks?dc=d&user=omni&password=p%40ss&consistency=one&serial=local_serial&replication=dc1:3,dc2:2');
    expect(options.credentials).toEqual({ username: 'omni', password: 'p@ss' });
    expect(options.consistency).toBe('ONE');
    expect(options.serialConsistency).toBe('LOCAL_SERIAL');
    expect(options.replication).toBe("{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}");
    expect(parseCqlUrl('cql://h/ks?dc=d&replication=3').replication).toBe("{'class': 'SimpleStrategy', 'replication_factor': 3}");
    expect(parseCqlUrl('cql://u%3A:p%3Aw@h/ks?dc=d').credentials).toEqual({ username: 'u:', password: 'p:w' });
  });

  it.each([
    ['cql://h?dc=d', /keyspace is missing/],
    ['cql://h/9ks?dc=d', /not a keyspace name/],
    ['cql://h/ks', /data center is missing/],
    ['cql://h:99999/ks?dc=d', /port 99999/],
    ['cql://h/ks?dc=d&consistency=MOST', /consistency must be one of/],
    ['cql://h/ks?dc=d&serial=QUORUM', /serial must be SERIAL or LOCAL_SERIAL/],
    ['cql://h/ks?dc=d&replication=lots', /replication must be/],
    ['cql://h/ks?dc=d&user=only', /both user and password/],
    ['cql://h/ks?dc=d&timeout=5', /unknown parameter "timeout"/],
    ['cql:/h/ks', /does not have the form/],
  ])('rejects %s', (url, problem) => {
    expect(() => parseCqlUrl(url)).toThrow(problem);
    try {
      parseCqlUrl(url);
    } catch (error) {
      expect(error).toMatchObject({ code: 'OMNI_ERR_STORE_URL_INVALID' });
    }
  });
});
