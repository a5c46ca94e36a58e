import { tmpdir } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * `pnpm test:cluster`: the fault tests on a three-node Cassandra cluster (RF=3), apart from the
 * main suite (`vitest.config.ts` never includes `*.cluster.ts`). The global setup starts the
 * cluster on 127.0.0.1-3 (CQL port 19042, see scripts/cassandra/cluster.mjs) unless one started
 * by `pnpm cassandra:start --nodes 3` runs, and stops it after if it started it.
 */
const conditionFlag = '--conditions=omnibus-source';
if (!(process.env.NODE_OPTIONS ?? '').includes(conditionFlag)) {
  process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, conditionFlag].filter(Boolean).join(' ');
}

export default defineConfig({
  ssr: { resolve: { conditions: ['omnibus-source', 'module', 'node', 'development|production'] } },
  test: {
    include: ['packages/core/test/cluster/**/*.cluster.ts'],
    globalSetup: ['packages/core/test/cluster/global-setup.ts'],
    env: { OMNIBUS_FILE_SINK_ALLOWED_DIRS: tmpdir() },
    pool: 'forks',
    // One scenario at a time: each stops, kills or pauses nodes of the one cluster.
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 900_000,
    hookTimeout: 400_000,
    teardownTimeout: 120_000,
    reporters: ['default'],
  },
});
