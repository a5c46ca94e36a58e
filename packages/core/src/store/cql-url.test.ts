import { describe, expect, it } from 'vitest';
import { parseCqlUrl } from './cql-url.ts';

const base = 'cql://127.0.0.1,127.0.0.2,127.0.0.3:19042/omnibus?dc=datacenter1';

describe('parseCqlUrl: replication and consistency', () => {
  it('keeps one replica, LOCAL_QUORUM and SERIAL when the URL names no replication', () => {
    const options = parseCqlUrl(base);
    expect(options.replication).toBe("{'class': 'SimpleStrategy', 'replication_factor': 1}");
    expect(options.consistency).toBe('LOCAL_QUORUM');
    expect(options.serialConsistency).toBe('SERIAL');
    expect(options.contactPoints).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3:19042']);
    expect(options.port).toBe(19042);
  });

  it('takes a replication factor, and then LOCAL_SERIAL for lightweight transactions', () => {
    const options = parseCqlUrl(`${base}&replication=3`);
    expect(options.replication).toBe("{'class': 'SimpleStrategy', 'replication_factor': 3}");
    expect(options.consistency).toBe('LOCAL_QUORUM');
    expect(options.serialConsistency).toBe('LOCAL_SERIAL');
  });

  it('takes a factor of 1 as unreplicated: SERIAL stays the default', () => {
    expect(parseCqlUrl(`${base}&replication=1`).serialConsistency).toBe('SERIAL');
    expect(parseCqlUrl(`${base}&replication=dc1:1`).serialConsistency).toBe('SERIAL');
  });

  it('takes a per-data-center map as NetworkTopologyStrategy', () => {
    const options = parseCqlUrl(`${base}&replication=dc1:3,dc2:2`);
    expect(options.replication).toBe("{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}");
    expect(options.serialConsistency).toBe('LOCAL_SERIAL');
  });

  it('takes the consistency levels the URL names, in any case', () => {
    const options = parseCqlUrl(`${base}&replication=3&consistency=quorum&serial=serial`);
    expect(options.consistency).toBe('QUORUM');
    expect(options.serialConsistency).toBe('SERIAL');
    expect(parseCqlUrl(`${base}&consistency=ONE&serial=LOCAL_SERIAL`)).toMatchObject({ consistency: 'ONE', serialConsistency: 'LOCAL_SERIAL' });
  });

  it.each([
    ['replication=0', /replication must be a factor from 1 to 99/],
    ['replication=three', /replication must be a factor/],
    ['replication=dc1:3,dc2', /replication must be a factor/],
    ['replication=dc1:3,dc1:2', /names a data center twice/],
    ['replication=dc1:0', /replication must be a factor/],
    ['consistency=LOCAL_SERIAL', /consistency must be one of/],
    ['serial=QUORUM', /serial must be SERIAL or LOCAL_SERIAL/],
    ['replicas=3', /unknown parameter "replicas"/],
  ])('refuses %s with a message that says what is allowed', (query, message) => {
    expect(() => parseCqlUrl(`${base}&${query}`)).toThrow(message);
    try {
      parseCqlUrl(`${base}&${query}`);
    } catch (error) {
      expect((error as { code?: string }).code).toBe('OMNI_ERR_STORE_URL_INVALID');
    }
  });

  it('never repeats a password in its error', () => {
    expect(() => parseCqlUrl('cql://admin:s3cret@127.0.0.1/omnibus?dc=datacenter1&replication=x')).toThrow(/cql:\/\/\*\*\*@127/);
    expect(() => parseCqlUrl('cql://admin:s3cret@127.0.0.1/omnibus?dc=datacenter1&replication=x')).not.toThrow(/s3cret/);
  });
});
