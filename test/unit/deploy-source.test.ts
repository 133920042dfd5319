// Which repository a deploy ships: with deploy_repo unset, only the project's own checkout; one
// that encloses the project from above is refused until deploy_repo names it (a real git
// checkout in a temp dir).
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localRepo } from '../../src/deploy/source.js';
import { ConfigError } from '../../src/errors.js';

const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'keel-source-')));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null' } });

describe('localRepo', () => {
  it('refuses a checkout that encloses the project from above unless deploy_repo names it', async () => {
    const outer = join(tmp, 'outer');
    const project = join(outer, 'ops', 'keel');
    mkdirSync(join(project, 'inventories'), { recursive: true });
    writeFileSync(join(outer, 'notes.txt'), 'private notes\n');
    git(outer, 'init', '-q');
    const err = await localRepo(project, '').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(`the git checkout around this project is ${outer}, above the project`);
    expect((err as ConfigError).hint).toContain('deploy_repo: "../.."');
    expect(await localRepo(project, '../..')).toBe(outer);
  });
  it("takes the project's own checkout", async () => {
    const own = join(tmp, 'own');
    mkdirSync(join(own, 'inventories'), { recursive: true });
    git(own, 'init', '-q');
    expect(await localRepo(own, '')).toBe(own);
  });
});
