import { tmpdir } from 'node:os';
import { defineConfig } from 'vitest/config';

// One Cassandra per run (global setup); each test file makes its own keyspace.
// Forks, not threads: lmdb and cassandra-driver hold native handles and sockets.
export default defineConfig({
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
