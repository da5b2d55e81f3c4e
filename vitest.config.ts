import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // One graphql instance: Vite would pick graphql's ESM build for our imports while Node loads its CJS
    // build for Pothos and yoga, and graphql rejects types from "another realm".
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
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
