#!/usr/bin/env node
// The npm registry reachable here answers 404 for rollup's non-Linux platform binaries, so
// `npm install` cannot record them in package-lock.json, and `npm ci` then refuses the lock
// ("Missing: @rollup/rollup-darwin-arm64 from lock file"). This adds the entries npm would
// have written (version + os/cpu/libc, optional), which npm ci skips on other platforms.
// Run it after any `npm install` that changes the lock.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const pkgs = lock.packages;
let added = 0;
for (const [path, meta] of Object.entries(pkgs)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies ?? {})) {
    if (!dep.startsWith('@rollup/rollup-')) continue;
    const key = (path ? path + '/' : '') + 'node_modules/' + dep;
    const hoisted = 'node_modules/' + dep;
    if (pkgs[key] || pkgs[hoisted]) continue;
    const platform = dep.slice('@rollup/rollup-'.length); // e.g. darwin-arm64, linux-x64-musl
    const [os, cpu, abi] = platform.split('-');
    const entry = {
      version,
      cpu: [cpu === 'arm' ? 'arm' : cpu === 'ia32' ? 'ia32' : cpu],
      dev: meta.dev || undefined,
      license: 'MIT',
      optional: true,
      os: [os === 'win32' ? 'win32' : os],
    };
    if (abi === 'musl' || abi === 'musleabihf') entry.libc = ['musl'];
    if (abi === 'gnu' || abi === 'gnueabihf') entry.libc = ['glibc'];
    pkgs[hoisted] = entry;
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`added ${added} optional platform entries`);
