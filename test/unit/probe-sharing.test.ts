// Hosts that share a compiled plan and print the same probe section share its parse, their
// decisions and their results (script.ts parseSection, decide.ts, results.ts okResult). The
// promise: a host whose state differs is never given another host's answer. The plan here is
// one object probed again and again on this machine's real /bin/sh, the state changed between.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoleLibrary } from '../../src/engine/roles.js';
import { compileHost } from '../../src/engine/compile.js';
import { runHost } from '../../src/engine/host-run.js';
import { activeResources, buildProbeScript, parseProbe } from '../../src/engine/script.js';
import { decideAll } from '../../src/engine/decide.js';
import type { Host } from '../../src/inventory/types.js';
import { LocalSession, localConnection } from '../helpers/local-session.js';

let dir: string;
let state: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-probe-sharing-'));
  state = join(dir, 'state');
  mkdirSync(join(dir, 'roles', 'web', 'templates'), { recursive: true });
  writeFileSync(
    join(dir, 'roles', 'web', 'role.yaml'),
    `resources:
  - directory: {path: "{{base}}/conf", mode: "0755"}
  - file: {path: "{{base}}/conf/a.ini", content: "a = 1\\n", mode: "0644"}
  - file: {path: "{{base}}/conf/b.ini", content: "b = 2\\n", mode: "0644"}
`,
  );
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function plan() {
  const host: Host = {
    name: 'local',
    groups: ['all'],
    roles: ['web'],
    vars: { base: dir },
    location: { file: 'inventories/test.yaml', line: 3 },
    connection: localConnection(),
  };
  return compileHost(host, new RoleLibrary([join(dir, 'roles')]), { env: 'test', root: dir });
}

const check = (p: ReturnType<typeof plan>) => runHost(p, new LocalSession('local', { KEEL_STATE_DIR: state }), { check: true, diff: false });
const statuses = (r: Awaited<ReturnType<typeof check>>) => r.resources.map((x) => `${x.status} ${x.reason}`);

function converge(): void {
  mkdirSync(join(dir, 'conf'), { recursive: true });
  chmodSync(join(dir, 'conf'), 0o755);
  writeFileSync(join(dir, 'conf', 'a.ini'), 'a = 1\n', { mode: 0o644 });
  writeFileSync(join(dir, 'conf', 'b.ini'), 'b = 2\n', { mode: 0o644 });
}

describe('probe sections shared between hosts', () => {
  it('the same section text gives the same facts, decisions and results; a different one its own', async () => {
    const p = plan();
    converge();
    const first = await check(p);
    expect(first.changed).toBe(0);
    const again = await check(p);
    expect(again.changed).toBe(0);
    // Shared: the second host's results are the first one's objects.
    again.resources.forEach((r, i) => expect(r).toBe(first.resources[i]));

    // Another host, same plan, one file differs: that file is changed, the rest still ok.
    writeFileSync(join(dir, 'conf', 'b.ini'), 'b = 3\n');
    const drifted = await check(p);
    expect(statuses(drifted)).toEqual([expect.stringMatching(/^ok /), expect.stringMatching(/^ok /), expect.stringMatching(/^changed .*b\.ini: content/)]);

    // A mode differs, on the directory: its section differs, the files' does not.
    writeFileSync(join(dir, 'conf', 'b.ini'), 'b = 2\n');
    chmodSync(join(dir, 'conf'), 0o700);
    const modes = await check(p);
    expect(statuses(modes)).toEqual([expect.stringMatching(/^changed .*mode 700 -> 755/), expect.stringMatching(/^ok /), expect.stringMatching(/^ok /)]);

    // And back: the first host's answer again.
    chmodSync(join(dir, 'conf'), 0o755);
    expect((await check(p)).changed).toBe(0);
  });

  it('parseProbe and decideAll answer each output for itself, in any order', async () => {
    const p = plan();
    const resources = activeResources(p.resources);
    const probeOnce = async () => {
      const out = await new LocalSession('local', { KEEL_STATE_DIR: state }).runScript(buildProbeScript(resources, 'NONCE', { wantDiff: false }));
      return out.stdout;
    };
    converge();
    const good = await probeOnce();
    rmSync(join(dir, 'conf', 'a.ini'));
    const missing = await probeOnce();
    const decide = (out: string) => {
      const d = decideAll(resources, parseProbe(out, 'NONCE', resources), { wantDiff: false });
      return resources.map((r) => {
        const x = d.get(r.index)!;
        return x instanceof Error ? 'error' : `${x.kind} ${x.reason}`;
      });
    };
    const a = decide(good);
    const b = decide(missing);
    expect(b[1]).toMatch(/^change .*a\.ini: create/);
    expect(a[1]).toMatch(/^ok /);
    expect(decide(missing)).toEqual(b);
    expect(decide(good)).toEqual(a);
    expect(parseProbe(good, 'NONCE', resources).facts.get(resources[1]!.index)).toBe(parseProbe(good, 'NONCE', resources).facts.get(resources[1]!.index));
  });
});
