/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

/**
 * The app's chunk (src/mount.tsx, imported by the small entry once it has asked for the page's
 * first answers) preloaded by the page itself, so it downloads alongside the entry rather than
 * after it runs.
 */
function preloadAppChunk(): Plugin {
  return {
    name: 'preload-app-chunk',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(_html, ctx) {
        const chunk = Object.values(ctx.bundle ?? {}).find((c) => c.type === 'chunk' && c.facadeModuleId?.endsWith('/src/mount.tsx'));
        if (!chunk) throw new Error('preload-app-chunk: no chunk of src/mount.tsx in the bundle');
        return [{ tag: 'link', attrs: { rel: 'modulepreload', crossorigin: true, href: `./${chunk.fileName}` }, injectTo: 'head' }];
      },
    },
  };
}

// The production build is shipped inside the Python package, which serves it.
export default defineConfig({
  plugins: [react(), preloadAppChunk()],
  base: './',
  build: {
    outDir: '../src/embedding_explorer/static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8031',
    },
  },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    environment: 'node',
  },
});
