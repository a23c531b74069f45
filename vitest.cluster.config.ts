import { defineConfig } from 'vitest/config';

/** `npm run test:cluster`: the multi-process cluster test (needs TEST_DATABASE_URL and TEST_REDIS_URL). */
export default defineConfig({
  test: {
    include: ['test/fleet/*.cluster.ts'],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
