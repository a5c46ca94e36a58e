import { tmpdir } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Tests run the TypeScript sources, never the build: the workspace packages' `exports` carry an
 * `omnibus-source` condition pointing at src/. Vite's resolver uses it for the modules it loads;
 * NODE_OPTIONS gives it to every Node process of the run (the forked test processes and the
 * workers and helpers they spawn) for what Node resolves itself, such as the connector modules
 * a worker loads.
 */
const SOURCE_CONDITION = 'omnibus-source';
const conditionFlag = `--conditions=${SOURCE_CONDITION}`;
if (!(process.env.NODE_OPTIONS ?? '').includes(conditionFlag)) {
  process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, conditionFlag].filter(Boolean).join(' ');
}

// One Cassandra per run (global setup); each test file makes its own keyspace.
// Forks, not threads: lmdb and cassandra-driver hold native handles and sockets.
export default defineConfig({
  // Tests run in Vite's server (SSR) environment: its default conditions, the source one first.
  ssr: { resolve: { conditions: [SOURCE_CONDITION, 'module', 'node', 'development|production'] } },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'examples/*/src/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'scripts/**/*.test.ts',
    ],
    globalSetup: ['scripts/test-support/src/global-setup.ts'],
    // Tests write their FileSink files into temporary directories (the workers they spawn inherit this).
    env: { OMNIBUS_FILE_SINK_ALLOWED_DIRS: tmpdir() },
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default'],
  },
});
