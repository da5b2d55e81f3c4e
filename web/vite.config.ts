// Builds the dashboard page (web/) into web/dist, which the service serves at / (src/server/dashboard.ts).
// Hashed file names under assets/ let the server mark them immutable; Trends (with uPlot) is its own chunk.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: false, modulePreload: { polyfill: false } },
  logLevel: 'warn',
});
