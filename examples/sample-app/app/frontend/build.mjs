// Bundles src/main.js for the browser into ../counter/static/counter/dist/app.js, stamped with
// the release it is built for: keel deploy sets KEEL_RELEASE and KEEL_SHA for
// deploy_local_build (seed 000's set_version). collectstatic then serves it at
// /static/counter/dist/app.js. The output is not committed (.gitignore).
import { build } from 'esbuild';

await build({
  entryPoints: ['src/main.js'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2018',
  legalComments: 'none',
  outfile: '../counter/static/counter/dist/app.js',
  define: {
    __RELEASE__: JSON.stringify(process.env.KEEL_RELEASE ?? 'dev'),
    __REVISION__: JSON.stringify(process.env.KEEL_SHA ?? 'unknown'),
  },
});
console.log(`built ../counter/static/counter/dist/app.js for release ${process.env.KEEL_RELEASE ?? 'dev'}`);
