// appCommand (src/ops/app-command.ts) in this machine's real sh: the live release's directory,
// the env file, $PYTHON and the virtualenv, the words exec'd exactly as given.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { userInfo, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appCommand, type AppPlace } from '../../src/ops/app-command.js';

const root = mkdtempSync(join(tmpdir(), 'keel-appcmd-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** app_root with releases/r1 live, its .venv python a script, and an env file with a secret. */
function layout(name: string): AppPlace & { release: string } {
  const appRoot = join(root, name);
  const release = join(appRoot, 'releases', 'r1');
  mkdirSync(join(release, '.venv', 'bin'), { recursive: true });
  writeFileSync(join(release, '.venv', 'bin', 'python'), '#!/bin/sh\necho venv-python "$@"\n');
  chmodSync(join(release, '.venv', 'bin', 'python'), 0o755);
  symlinkSync('releases/r1', join(appRoot, 'current'));
  mkdirSync(join(appRoot, 'config'));
  writeFileSync(join(appRoot, 'config', 'app.env'), "SECRET_KEY='s3cret with spaces'\nDEBUG=0\n");
  const me = userInfo().username;
  return { appUser: me, appGroup: me, appRoot, envFile: join(appRoot, 'config', 'app.env'), python: '/usr/bin/python3', release };
}

const run = (script: string) => spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });

describe('appCommand', () => {
  it('execs the words as they are, in the live release, with the env file, $PYTHON and the virtualenv first on PATH', () => {
    const a = layout('app1');
    const words = ["it's", '$(id)', 'a  b', 'line1\nline2', '`x`', '*', '-n', ''];
    const r = run(appCommand(a, { words: ['printf', '[%s]', ...words] }).text);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(words.map((w) => `[${w}]`).join(''));
    const env = run(appCommand(a, { words: ['sh', '-c', 'pwd; echo "$SECRET_KEY|$DEBUG|$PYTHON|$VIRTUAL_ENV"; python x'] }).text);
    expect(env.stdout.split('\n')).toEqual([
      a.release, // the release itself (cd -P), not the current symlink
      `s3cret with spaces|0|${a.release}/.venv/bin/python|${a.release}/.venv`,
      'venv-python x',
      '',
    ]);
  });

  it('runs a task as the shell line it is, in the same world, its text on no command line', () => {
    const a = layout('app2');
    const task = 'echo "$PYTHON" | sed s/python/PY/; echo \'it\'\'s\' "$(echo sub)"\nKEEL_TASK_x\nexit 4';
    const script = appCommand(a, { task }, 'n0nce').text;
    const r = run(script);
    expect(r.stdout).toBe(`${a.release}/.venv/bin/PY\nits sub\n`);
    expect(r.stderr).toMatch(/KEEL_TASK_x: (command )?not found/);
    expect(r.status).toBe(4);
    // What reaches exec: the boot's words, not the task.
    expect(script.split('\n').filter((l) => l.startsWith('exec ') && l.includes('sed'))).toEqual([]);
  });

  it('without a live release: exit 125 and what to do, nothing run', () => {
    const a = { ...layout('app3'), appRoot: join(root, 'nothing-here') };
    const r = run(appCommand(a, { words: ['echo', 'RAN'] }).text);
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^no release is live on this host \(.*nothing-here\/current does not exist\): keel deploy puts one there\n$/);
  });

  it.skipIf(process.getuid?.() !== 0)('as root: switches to the app user with setpriv (HOME and USER its own)', () => {
    const a = layout('app4');
    chmodSync(root, 0o755);
    for (const d of [a.appRoot, join(a.appRoot, 'releases'), a.release]) chmodSync(d, 0o755);
    chmodSync(a.envFile, 0o644);
    const r = run(appCommand({ ...a, appUser: 'nobody', appGroup: 'nogroup' }, { words: ['sh', '-c', 'id -un; echo "$USER $HOME"'] }).text);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('nobody\nnobody /nonexistent\n');
    // A task's text crosses setpriv on its descriptor.
    const t = run(appCommand({ ...a, appUser: 'nobody', appGroup: 'nogroup' }, { task: 'echo "task as $(id -un)"' }).text);
    expect(t.stdout).toBe('task as nobody\n');
  });
});
