// Seed 003 as the fleet it describes (examples/seed-003-aquamark/inventories/fleet.yaml): web
// hosts behind a load balancer, listed by a dynamic inventory script (the running local
// targets, as a cloud script lists an autoscaling group), deployed one host at a time.
//
//   lb1             role lb (nginx over group web)                        Debian 12
//   web1 web2       base, app, nginx, deploy                              Debian 12
//   web3            the same                                              Debian 13
//   backup1         PostgreSQL (17: its release's), the two daemons       Debian 13
//   web4            joins later: keel deploy fleet --catch-up              Debian 12
//
// Requests run in a loop on lb1, through its nginx, during each deploy: every answer is kept
// with the backend that gave it and the revision it served, to check what the deploy promises:
// no request fails, each host switches once (it serves one release at any moment), the fleet
// serves two at most, and a failure puts every switched host back.
//
// Targets start from the warm images (the stack's packages preinstalled): this file tests
// fleets, not installs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerName } from '../../src/target/docker.js';
import { dockerExecSh } from '../../src/target/docker-cli.js';
import { quote } from '../../src/shell/quote.js';
import { answersDuring, type Answer } from '../helpers/requests.js';
import type { TestTarget } from '../helpers/target.js';
import { copyExample, deploy, finish, keel, onTarget, privateAddress, provision, provisionTwice, until, upTargets, type Example } from '../helpers/examples.js';
import { setVaultPassword } from '../helpers/project.js';
import { initVault, setSecret } from '../../src/vault/operations.js';
import { vaultContext } from '../../src/vault/store.js';

const VAULT_PASSWORD = 'fleet-vault-passphrase';
const ROOT = '/home/aquamark/webapp';
let ex: Example;
let restoreVault: () => void;
/** Backend address (ip:80) -> target name, for the lb's X-Backend header. */
const backendName = new Map<string, string>();

/** lb1 as the request helpers want it: a shell in the container, through the engine. */
function target(name: string): TestTarget {
  const container = containerName(ex.root, name);
  return {
    exec: async (cmd: string[]) => {
      const r = await dockerExecSh(container, cmd.map((c) => quote(c)).join(' '));
      return { code: r.code ?? 1, stdout: r.stdout, stderr: r.stderr };
    },
  } as TestTarget;
}

/** Requests through lb1 while `during` runs: each answer's backend (by name) and revision. */
async function throughLb<T>(during: () => Promise<T>): Promise<{ result: T; answers: Answer[] }> {
  const r = await answersDuring(target('lb1'), during, { header: 'X-Backend', pattern: 'revision: [0-9a-f]+' });
  const answers = r.answers.map((a) => ({ ...a, header: backendName.get(a.header) ?? a.header, match: a.match.replace('revision: ', '') }));
  return { result: r.result, answers };
}

/** Each backend's revisions in the order it served them, runs collapsed: [old, new] = switched once. */
function sequences(answers: Answer[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const a of [...answers].sort((x, y) => x.at - y.at)) {
    const seq = (out[a.header] ??= []);
    if (seq[seq.length - 1] !== a.match) seq.push(a.match);
  }
  return out;
}

function describeAnswers(answers: Answer[]): string {
  const failed = answers.filter((a) => a.code !== '200');
  return `${answers.length} answers, ${failed.length} failed (${failed
    .slice(0, 5)
    .map((a) => `${a.code} from ${a.header || '?'}`)
    .join(', ')}); by backend: ${JSON.stringify(sequences(answers))}`;
}

/** lb1's upstream attempts since `since` (its access log) that were not a 2xx at first try. */
async function upstreamErrors(since: number): Promise<string[]> {
  const log = await onTarget(ex, 'lb1', 'cat /var/log/nginx/lb-web.log');
  return log
    .split('\n')
    .filter((l) => l.includes('upstream_status='))
    .filter((l) => Date.parse(/\[([^\]]+)\]/.exec(l)?.[1] ?? '') >= since - 1000)
    .filter((l) => !/upstream_status=2\d\d rt=/.test(l));
}

/** When lbctl took `host` out (drain done) and began to put it back, from its log on lb1. */
async function drainedWindow(host: string, since: number): Promise<[number, number]> {
  const lines = (await onTarget(ex, 'lb1', 'cat /var/log/keel/lb-web.log'))
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  const find = (what: string) => Number(lines.find(([t, w, ...who]) => Number(t) >= since && w === what && who.includes(host))?.[0] ?? NaN);
  return [find('drained'), find('restoring')];
}

const live = async (host: string) => (await onTarget(ex, host, `readlink ${ROOT}/current || echo none`)).trim().replace(/^releases\//, '');
const sha = async (host: string) => (await onTarget(ex, host, `cat ${ROOT}/current/REVISION 2>/dev/null || echo none`)).trim();
const lbStatus = async () => (await onTarget(ex, 'lb1', '/usr/local/sbin/lbctl-web status')).trim();

beforeAll(async () => {
  ex = copyExample('seed-003-aquamark', 'fleet');
  await upTargets(ex, ['lb1', 'web1', 'web2'], 'bookworm');
  await upTargets(ex, ['web3', 'backup1'], 'trixie');
  for (const t of ['web1', 'web2', 'web3']) backendName.set(`${await privateAddress(ex, t)}:80`, t);
  // The test reads which backend answered: role lb says it in a header when asked to.
  const inv = readFileSync(join(ex.root, 'inventories', 'fleet.yaml'), 'utf8');
  writeFileSync(
    join(ex.root, 'inventories', 'fleet.yaml'),
    inv.replace('vars: {lb_backend_group: web}', 'vars: {lb_backend_group: web, lb_backend_header: X-Backend}'),
  );
  restoreVault = setVaultPassword(VAULT_PASSWORD);
  const vc = vaultContext(ex.root, 'fleet', { interactive: false, vars: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD }, logN: 10 });
  await initVault(vc, []);
  await setSecret(vc, 'db_password', 'Aquamark-fl33t');
  await setSecret(vc, 'secret_key', 'django-insecure-fleet');
  await provisionTwice(ex);
}, 900_000);
afterAll(async () => {
  restoreVault?.();
  await finish(ex);
});

describe('seed 003 as a fleet: a dynamic inventory, Debian 12 and 13 together, role lb', () => {
  it('the inventory script lists the running targets; each host runs its release, with no version pinned', async () => {
    const r = await keel(ex, 'inventory', 'fleet', '--output', 'json');
    expect(r.code, r.stderr).toBe(0);
    const doc = r.json();
    expect(Object.keys(doc.hosts).sort()).toEqual(['backup1', 'lb1', 'web1', 'web2', 'web3']);
    expect(doc.groups.web.hosts).toEqual(['web1', 'web2', 'web3']);
    // A value that depends on the host's release is shown as such (the probe picks it).
    expect(doc.hosts.backup1.vars.postgres_version).toEqual({ by_release: { bookworm: 15, trixie: 17, jammy: 14, noble: 16 } });
    // What the hosts run: PostgreSQL 17 on Debian 13's backup1, pg_dump 15 on Debian 12's web hosts.
    expect(await onTarget(ex, 'backup1', 'ls /usr/lib/postgresql')).toBe('17\n');
    expect(await onTarget(ex, 'web1', "pg_dump --version | sed 's/ (Debian.*//'")).toMatch(/^pg_dump \(PostgreSQL\) 15\./);
    expect(await lbStatus()).toMatch(/^web1 \S+:80 in-service\nweb2 \S+:80 in-service\nweb3 \S+:80 in-service$/);
  });

  it('a pg_dump older than the server stops the deploy before anything is built, and says where a dump works', async () => {
    // Without backup1 in the run, web1 (the migrate host, pg_dump 15) would dump PostgreSQL 17.
    const d = await deploy(ex, 'main', '--limit', 'lb1,web1,web2,web3', '--allow-split');
    expect(d.code, d.out).toBe(2);
    expect(d.j.status).toBe('failed');
    expect(d.j.error).toContain('web1, which takes the dump (the migrate host), has pg_dump 15; the database server is PostgreSQL 17');
    // web3, on Debian 13, has a client that can: the hint names it.
    expect(d.j.error).toContain('hint: dump where the client can: set deploy_backup_host to web3 (pg_dump 17)');
    expect(await onTarget(ex, 'web1', `ls ${ROOT}/releases 2>/dev/null | wc -l`)).toBe('0\n');
  });

  let first = '';
  it('the first deploy: one web host at a time; the database host dumps (its pg_dump is its server`s)', async () => {
    const d = await deploy(ex, 'main');
    expect(d.code, d.out).toBe(0);
    expect(d.j.batches).toEqual([['web1'], ['web2'], ['web3']]);
    expect(d.j.dump.host).toBe('backup1');
    first = d.j.sha;
    for (const h of ['web1', 'web2', 'web3', 'backup1']) expect(await sha(h), h).toBe(first);
  });

  it('a rolling deploy through lb1 under requests: none fails, each host switches once, two releases at most', async () => {
    const hooks = join(ex.root, 'lb-hooks.log');
    const started = Date.now();
    // deploy_lb_drain/restore (a cloud load balancer's hooks) run too, on this machine: logged.
    const { result: d, answers } = await throughLb(() =>
      deploy(
        ex,
        'v4-code-only',
        '-e',
        `deploy_lb_drain=echo "drain $KEEL_HOST $(date +%s%3N)" >> ${hooks}`,
        '-e',
        `deploy_lb_restore=echo "restore $KEEL_HOST $(date +%s%3N)" >> ${hooks}`,
      ),
    );
    console.log(`rolling deploy: ${describeAnswers(answers)}`);
    expect(d.code, d.out).toBe(0);
    expect(d.j.batches).toEqual([['web1'], ['web2'], ['web3']]);
    expect(
      answers.filter((a) => a.code !== '200'),
      describeAnswers(answers),
    ).toEqual([]);
    expect(await upstreamErrors(started)).toEqual([]);
    const seq = sequences(answers);
    // Every host answered before and after its switch; each switched once, old to new.
    for (const h of ['web1', 'web2', 'web3']) expect(seq[h], h).toEqual([first, d.j.sha]);
    expect(new Set(answers.map((a) => a.match)).size).toBe(2);
    // One batch at a time: a host is put back before the next is taken out.
    const log = readFileSync(hooks, 'utf8').trim().split('\n');
    expect(log.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      'drain web1',
      'restore web1',
      'drain web2',
      'restore web2',
      'drain web3',
      'restore web3',
    ]);
    // From the moment lbctl said a host was drained (its requests in flight done) until it began
    // to restore it, lb1 sent that host no request.
    for (const h of ['web1', 'web2', 'web3']) {
      const [out, back] = await drainedWindow(h, started);
      expect(back).toBeGreaterThan(out);
      const during = answers.filter((a) => a.header === h && a.at >= out && a.at <= back);
      expect(during, h).toEqual([]);
      expect(answers.filter((a) => a.at >= out && a.at <= back).length, `requests while ${h} was out`).toBeGreaterThan(0);
    }
    expect(await lbStatus()).not.toContain('drained');
  });

  it('a failure in the last batch stops the rollout and puts every switched host back: no request fails', async () => {
    const before = await sha('web1');
    // A check only web3 fails (a test stand-in for a host-specific problem): its batch comes last.
    await onTarget(ex, 'web3', 'touch /tmp/fail-release-checks');
    const inv = join(ex.root, 'inventories', 'fleet.yaml');
    const text = readFileSync(inv, 'utf8');
    writeFileSync(
      inv,
      text.replace(
        '    roles: [base, app, nginx, deploy]',
        '    roles: [base, app, nginx, deploy]\n    vars: {deploy_health_checks: [{command: "test ! -e /tmp/fail-release-checks"}]}',
      ),
    );
    const started = Date.now();
    try {
      const { result: d, answers } = await throughLb(() => deploy(ex, 'v4'));
      console.log(`rolling deploy that fails on web3: ${describeAnswers(answers)}`);
      expect(d.code, d.out).toBe(2);
      expect(d.j.status).toBe('rolled back');
      expect(d.j.error).toMatch(/check failed on web3 at check-command-1/);
      expect(
        answers.filter((a) => a.code !== '200'),
        describeAnswers(answers),
      ).toEqual([]);
      expect(await upstreamErrors(started)).toEqual([]);
      for (const h of ['web1', 'web2', 'web3', 'backup1']) expect(await sha(h), h).toBe(before);
      const seq = sequences(answers);
      // web1 and web2 served the new release, then the old one again; web3 never switched.
      expect(seq.web3).toEqual([before]);
      for (const h of ['web1', 'web2']) {
        expect(seq[h]?.[0], h).toBe(before);
        expect(seq[h]!.length, h).toBeLessThanOrEqual(3); // old, new, old: switched and back once
      }
      expect(new Set(answers.map((a) => a.match)).size).toBeLessThanOrEqual(2);
      expect(await lbStatus()).not.toContain('drained');
    } finally {
      writeFileSync(inv, text);
      await onTarget(ex, 'web3', 'rm -f /tmp/fail-release-checks');
    }
  });

  it('a new web host joins drained, and keel deploy fleet --catch-up puts the live release on it alone', async () => {
    const release = await live('web1');
    await upTargets(ex, ['web4'], 'bookworm');
    backendName.set(`${await privateAddress(ex, 'web4')}:80`, 'web4');
    const started = Date.now();
    const { result, answers } = await throughLb(async () => {
      const p = await provision(ex, 'provision with web4');
      expect(p.hosts.find((h: any) => h.name === 'web4').changed).toBeGreaterThan(0);
      expect(await lbStatus()).toMatch(/^web4 \S+:80 drained \(new\)$/m);
      const r = await keel(ex, 'deploy', 'fleet', '--catch-up', '--output', 'json');
      // Requests go on after it until lb1 has sent web4 a few.
      const web4 = `${await privateAddress(ex, 'web4')}:80`;
      await until(
        'lb1 sends web4 requests',
        async () => Number(await onTarget(ex, 'lb1', `grep -c 'upstream=${web4} ' /var/log/nginx/lb-web.log || true`)) >= 3,
      );
      return r;
    });
    console.log(`catch-up: ${describeAnswers(answers)}`);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const j = result.json();
    expect(j.status).toBe('deployed');
    expect(j.release).toBe(release);
    expect(j.hosts.map((h: any) => h.name)).toEqual(['web4']); // only web4 locked and changed
    expect(j.hosts[0].steps.some((s: any) => s.phase === 'migrate' || s.phase === 'dump')).toBe(false);
    expect(await live('web4')).toBe(release);
    expect(
      answers.filter((a) => a.code !== '200'),
      describeAnswers(answers),
    ).toEqual([]);
    expect(await upstreamErrors(started)).toEqual([]);
    expect(sequences(answers).web4).toEqual([await sha('web1')]);
    expect(await lbStatus()).toMatch(/^web4 \S+:80 in-service$/m);
    const again = await keel(ex, 'deploy', 'fleet', '--catch-up');
    expect(again.stdout).toContain(`every host runs ${release} already: nothing to catch up`);
  });

  it('keel provision --serial 1 that starts the app server anew and reloads nginx on every web host: each out of lb1 meanwhile', async () => {
    const vars = join(ex.root, 'restart-everything.yaml');
    writeFileSync(vars, 'app_workers: 3\nnginx_client_max_body_size: 20m\n');
    // web4 taken out by hand (an operator looking into it): keel puts back only what it took out.
    await onTarget(ex, 'lb1', '/usr/local/sbin/lbctl-web drain web4');
    const started = Date.now();
    const { result: p, answers } = await throughLb(() => provision(ex, 'provision --serial 1', '--serial', '1', '-e', `@${vars}`));
    console.log(`rolling provision: ${describeAnswers(answers)}`);
    expect(await lbStatus()).toMatch(/^web4 \S+:80 drained \(manual\)$/m);
    expect(answers.filter((a) => a.header === 'web4')).toEqual([]);
    await onTarget(ex, 'lb1', '/usr/local/sbin/lbctl-web restore web4');
    for (const h of ['web1', 'web2', 'web3', 'web4']) {
      const ran = p.hosts
        .find((x: any) => x.name === h)
        .resources.filter((r: any) => r.status === 'changed')
        .map((r: any) => r.id);
      // appctl's reload starts the server anew in its other slot; nginx reloads.
      expect(ran, h).toEqual(expect.arrayContaining(['handler/app:reload app', 'handler/nginx:reload nginx']));
    }
    expect(
      answers.filter((a) => a.code !== '200'),
      describeAnswers(answers),
    ).toEqual([]);
    expect(await upstreamErrors(started)).toEqual([]);
    const web = ['web1', 'web2', 'web3'];
    const windows = await Promise.all(web.map((h) => drainedWindow(h, started)));
    windows.forEach(([out, back], i) => {
      expect(back, web[i]).toBeGreaterThan(out);
      expect(
        answers.filter((a) => a.header === web[i] && a.at >= out && a.at <= back),
        web[i],
      ).toEqual([]);
      // One batch at a time: this host was back before the next one left.
      if (i > 0) expect(out, web[i]).toBeGreaterThan(windows[i - 1]![1]);
    });
    expect(await lbStatus()).not.toContain('drained');
  });
});
