// Everything `keel secrets` runs, in one module that the CLI imports only when a secrets
// command runs: age-encryption and the vault code stay off the start-up path of the others.
export { editVault } from './edit.js';
export { diffText, getSecret, importAnsible, initVault, readAnsiblePasswordFile, recipientsChange, rekeyVault, setSecret, viewVault } from './operations.js';
export { vaultContext } from './store.js';
export { keyCacheDir } from './key-cache.js';
export { lockAll, lockVault, parseDuration, unlockVault, vaultStatus } from './unlock.js';
