// The bus end to end on Cassandra: two worker processes on one keyspace (see bus-e2e.ts).
import { cqlUrl, freshKeyspace } from '@omnibus/test-support';
import { openStore } from '../../src/store/open.ts';
import { describeBusEndToEnd } from './bus-e2e.ts';

describeBusEndToEnd('cql', 'Cassandra', async () => {
  const keyspace = await freshKeyspace('bus_e2e');
  const url = cqlUrl(keyspace.keyspace);
  return {
    url,
    open: async () => {
      const store = openStore(url);
      await store.init();
      return store;
    },
    drop: () => keyspace.drop(),
  };
});
