// The dashboard's client bundle: built at package build time into dist/web, served by the package
// itself (src/dashboard/assets.ts) with hashed, long-cached names. Nothing comes from a CDN.
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export default {
  root: here,
  base: '/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    manifest: true,
    sourcemap: false,
    target: 'es2022',
    rollupOptions: { input: fileURLToPath(new URL('./main.ts', import.meta.url)) },
  },
};
