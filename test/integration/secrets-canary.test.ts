// The canary: a unique value in the vault, used by a template and by a command that fails,
// run at the most verbose output. Nothing keel prints or logs, and no command line in the
// target's process list, may contain it; the file on the host must (so the test can fail).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startTarget, type TestTarget } from '../helpers/target.js';
import { tempProject, writeInventory, writeRole } from '../helpers/project.js';
import { runKeel } from '../helpers/cli.js';
import { vaultContext } from '../../src/vault/store.js';
import { initVault, setSecret } from '../../src/vault/operations.js';

let target: TestTarget;
let root: string;
const canary = `canary-${randomBytes(8).toString('hex')}`;

beforeAll(async () => {
  target = await startTarget();
  root = tempProject('canary');
  mkdirSync(join(root, 'secrets'));
  writeFileSync(join(root, 'secrets', 'itest.password'), 'a passphrase for the canary test\n', { mode: 0o600 });
  const vc = { ...vaultContext(root, 'itest', { interactive: false, vars: {} }), logN: 10 };
  await initVault(vc, []);
  await setSecret(vc, 'canary', canary);
  writeInventory(root, target, { group: 'web', roles: ['canary'], vars: { canary_value: '{{secrets.canary}}' } });
  writeRole(
    root,
    'canary',
    `
variables:
  canary_value: {type: string}
resources:
  - template: {src: app.env.hbs, dest: /etc/canary.env, mode: "0600"}
  - command:
      run: "printf 'connecting with %s\\\\n' {{quote canary_value}} >&2; sleep 2; exit 3"
      unless: "grep -q never-there /etc/canary.env"
`,
    { 'templates/app.env.hbs': 'DATABASE_PASSWORD={{canary_value}}\nOTHER=1\n' },
  );
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('secrets never leak', () => {
  it('finds the canary nowhere but in the file on the host', async () => {
    const printed: string[] = [];
    const processLists: string[] = [];
    // Watch the target's process list while the failing command sleeps.
    const watching = (async () => {
      for (let i = 0; i < 12; i++) {
        processLists.push((await target.exec(['ps', 'axww', '-o', 'args'])).stdout);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const verbose = await runKeel(['provision', 'itest', '-v', '--diff'], { root });
    await watching;
    printed.push(verbose.stdout, verbose.stderr);
    expect(verbose.code).toBe(2); // the command fails on purpose
    expect(verbose.stdout).toContain('connecting with ******');

    const plan = await runKeel(['plan', 'itest', '-v'], { root });
    const json = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const inv = await runKeel(['inventory', 'itest'], { root });
    const invJson = await runKeel(['inventory', 'itest', '--output', 'json'], { root });
    for (const r of [plan, json, inv, invJson]) printed.push(r.stdout, r.stderr);
    expect(inv.stdout).toMatch(/web1:[\s\S]*canary_value: "\*\*\*\*\*\*"/);
    const logs = readdirSync(join(root, '.keel', 'logs')).map((f) => readFileSync(join(root, '.keel', 'logs', f), 'utf8'));
    expect(logs.length).toBeGreaterThanOrEqual(3);

    // The commands ran while we watched (the sleep shows in the process list).
    expect(processLists.join('\n')).toContain('sleep 2');
    for (const text of [...printed, ...logs, ...processLists]) expect(text).not.toContain(canary);

    // The secret did reach the host, in a 0600 file: the test can see it when it is there.
    const onHost = await target.exec(['sh', '-c', 'stat -c %a /etc/canary.env; cat /etc/canary.env']);
    expect(onHost.stdout).toBe(`600\nDATABASE_PASSWORD=${canary}\nOTHER=1\n`);
  });
});
