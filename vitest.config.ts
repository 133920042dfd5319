import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests share real Docker targets; keep files sequential so they don't fight
    // over the two cores, and give SSH and apt real time (no speed claims live in tests).
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
