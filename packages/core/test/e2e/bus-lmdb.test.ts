// The bus end to end on LMDB: two worker processes on one LMDB directory (see bus-e2e.ts).
import { join } from 'node:path';
import { LmdbStore } from '../../src/store/lmdb.ts';
import { describeBusEndToEnd } from './bus-e2e.ts';

describeBusEndToEnd('lmdb', 'LMDB', async (dir) => {
  const data = join(dir, 'data');
  return {
    url: `lmdb:${data}`,
    open: async () => {
      const store = new LmdbStore(data, { sweepIntervalMs: 0 });
      await store.init();
      return store;
    },
  };
});
