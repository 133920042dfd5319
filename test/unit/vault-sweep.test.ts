// The sweep of plaintext left by a `keel secrets edit` that was killed (SIGKILL) before it
// could wipe it: directories named after their process, removed once that process is gone.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { sweepStalePlaintext, withPlaintextDir } from '../../src/vault/plaintext-dir.js';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});
function shmDir(): string {
  const d = mkdtempSync(join('/dev/shm', 'keel-unit-'));
  made.push(d);
  return d;
}

describe('sweep of plaintext left by a killed edit', () => {
  const myStart = () => {
    const stat = fs.readFileSync('/proc/self/stat', 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  };
  const myNs = () => /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))![1];

  it('names the directory after its process, so a later run can tell whose it is', async () => {
    const base = shmDir();
    await withPlaintextDir(async (dir) => {
      expect(dir.path).toMatch(new RegExp(`/keel-secrets-${process.pid}-${myStart()}-${myNs()}-[A-Za-z0-9]{6}$`));
      expect(sweepStalePlaintext(base)).toEqual([]); // ours, and we are alive
    }, base);
  });

  it('removes the directories of dead or replaced processes, keeps live ones and unknown names', async () => {
    const base = shmDir();
    const dead = spawnSync('true').pid!;
    const sleeper = spawn('sleep', ['30']);
    try {
      const ns = myNs();
      const mk = (name: string) => {
        fs.mkdirSync(join(base, name), { mode: 0o700 });
        fs.writeFileSync(join(base, name, 'staging.yaml'), 'db_password: x\n', { mode: 0o600 });
        return join(base, name);
      };
      const gone = mk(`keel-secrets-${dead}-123-${ns}-aaaaaa`);
      const reused = mk(`keel-secrets-${sleeper.pid}-1-${ns}-bbbbbb`); // same pid, another start time
      const live = mk(`keel-secrets-${process.pid}-${myStart()}-${ns}-cccccc`);
      const otherNs = mk(`keel-secrets-${dead}-123-1-dddddd`);
      const oldStyle = mk('keel-secrets-eeeeee');
      const messages = sweepStalePlaintext(base);
      expect(messages.sort()).toEqual(
        [
          `removed leftover plaintext of a killed \`keel secrets edit\` (pid ${dead}): ${gone}`,
          `removed leftover plaintext of a killed \`keel secrets edit\` (pid ${sleeper.pid}): ${reused}`,
        ].sort(),
      );
      expect(fs.existsSync(gone)).toBe(false);
      expect(fs.existsSync(reused)).toBe(false);
      for (const kept of [live, otherNs, oldStyle]) expect(fs.existsSync(kept)).toBe(true);
    } finally {
      sleeper.kill();
    }
  });
});
