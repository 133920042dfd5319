// What the page says about the code it runs: set at build time (build.mjs).
/* global __RELEASE__, __REVISION__ */
export const release = __RELEASE__;
export const revision = __REVISION__;

export function describe() {
  return `front-end of release ${release} (${revision.slice(0, 12)})`;
}
