import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Two cores: the multi-process tests start their own processes, so run
    // two files at a time at most.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 30_000,
    setupFiles: ['test/helpers/setup.ts'],
    reporters: ['default'],
  },
});
