import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native code (Dawn) reads these at device creation; set them here so every worker sees them.
    env: { EGL_PLATFORM: 'surfaceless' },
  },
});
