#!/usr/bin/env node
// Builds the browser assets with esbuild, after tsc (npm run build / prepare):
//   dist/browser/sigserve-client.js  the client library as one ES module,
//                                    socket.io-client included
//   dist/demo/app.js, status.js      the demo pages' scripts; app.js loads the
//                                    client bundle above at run time
// Plain JavaScript so it runs without a TypeScript loader.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
};

/** The demo imports the client from source for its types; at run time it loads the bundle. */
const clientFromBundle = {
  name: 'client-from-bundle',
  setup(b) {
    b.onResolve({ filter: /\/src\/client\/index\.js$/ }, () => ({ path: '/assets/sigserve-client.js', external: true }));
  },
};

await Promise.all([
  build({ ...common, entryPoints: ['src/client/index.ts'], outfile: 'dist/browser/sigserve-client.js' }),
  build({
    ...common,
    entryPoints: { app: 'demo/app.ts', status: 'demo/status.ts' },
    outdir: 'dist/demo',
    plugins: [clientFromBundle],
  }),
]);
