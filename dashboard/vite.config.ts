import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Static assets served by the gateway at /dashboard; everything bundled, nothing fetched from elsewhere.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/dashboard/',
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  logLevel: 'warn',
});
