import { defineConfig } from 'vite';

// Served by every worker under /ui/ (packages/core/src/rest/ui.ts); assets carry content hashes.
export default defineConfig({
  base: '/ui/',
  root: 'app',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'es2022',
    // One small bundle: no source maps shipped to operators' browsers, no inlined data URLs under CSP.
    sourcemap: false,
    assetsInlineLimit: 0,
  },
  server: { proxy: { '^/(?!ui/).*': 'http://127.0.0.1:8083' } },
});
