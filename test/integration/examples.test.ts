// The examples of examples/seed-*/, each as a user runs it (examples/README.md): the project
// copied to a temp dir, the sample app's repository made in it, its vault created, its local
// targets started by keel's own `targetUp` (what `keel target up` runs) on the WARM image
// (scripts/build-warm-image.sh: the stack's Debian packages preinstalled, so the time goes to
// what is tested here, not to apt), then: provision twice (the second run changes nothing),
// `keel deploy <env> --branch main`, and the behaviour the seed describes. One project per
// example, one after the other (their targets would fight over names, ports 80/443 and the two
// cores); each example's time is printed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { vaultContext } from '../../src/vault/store.js';
import { initVault, setSecret } from '../../src/vault/operations.js';
import { containerName } from '../../src/target/docker.js';
import { docker } from '../../src/target/docker-cli.js';
import {
  changed,
  codeOn,
  copyExample,
  deploy,
  exampleTarget,
  expectNoSecretsInProcesses,
  finish,
  httpGet,
  keel,
  onTarget,
  privateAddress,
  probe,
  provision,
  provisionTwice,
  recordedPorts,
  repoRoot,
  setLine,
  until,
  upTargets,
  type Example,
} from '../helpers/examples.js';
import { describeCounts, requestsDuring } from '../helpers/requests.js';

const fileStarted = Date.now();
afterAll(() => console.log(`examples: ${((Date.now() - fileStarted) / 1000).toFixed(1)} s for the whole file`));

const VAULT_PASSWORD = 'examples-vault-passphrase';
const saved = { pw: process.env.KEEL_VAULT_PASSWORD, id: process.env.KEEL_AGE_IDENTITY };
afterAll(() => {
  for (const [k, v] of [
    ['KEEL_VAULT_PASSWORD', saved.pw],
    ['KEEL_AGE_IDENTITY', saved.id],
  ] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** A passphrase vault for the example's environment (logN 10: fast, for tests only), as
 *  `keel secrets init <env>` then `keel secrets set <env> KEY` per secret would make it. */
async function passphraseVault(ex: Example, secrets: Record<string, string>): Promise<void> {
  process.env.KEEL_VAULT_PASSWORD = VAULT_PASSWORD;
  const vc = vaultContext(ex.root, ex.env, { interactive: false, vars: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD }, logN: 10 });
  await initVault(vc, []);
  for (const [k, v] of Object.entries(secrets)) await setSecret(vc, k, v);
}

const hasAnsibleVault = (() => {
  try {
    execFileSync('ansible-vault', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('seed 001 (catalogage): its Ansible INI inventory through ansible_inventory:, nginx -> uvicorn on tcp/3579 under supervisor -> PostgreSQL', () => {
  let ex: Example;
  const DB_PASSWORD = 'Catalogage-s3cret';

  beforeAll(async () => {
    ex = copyExample('seed-001-catalogage', 'test');
    await upTargets(ex, ['web1-test']);
    // The INI's host line, pointed at the target instead of the Vagrant machine: its recorded
    // SSH port and the key `keel target up` made, the rest of the line as the team wrote it.
    const ports = await recordedPorts(ex, 'web1-test');
    const ini = join(ex.root, 'ops', 'ansible', 'hosts_test');
    const before = readFileSync(ini, 'utf8');
    const after = before.replace(/^(web1-test .*)$/m, (line) =>
      line
        .replace(/ansible_port=\S+/, `ansible_port=${ports.ssh}`)
        .replace(/ansible_ssh_private_key_file=\S+/, `ansible_ssh_private_key_file=${join(ex.root, '.keel', 'target', 'id_ed25519')}`),
    );
    expect(after).toMatch(
      new RegExp(
        `^web1-test ansible_host=127\\.0\\.0\\.1 ansible_port=${ports.ssh} ansible_user=root ansible_ssh_private_key_file=\\S+ env_branch=master$`,
        'm',
      ),
    );
    writeFileSync(ini, after);
    // known_hosts named by inventories/test.yaml: the target's key (a user would pass
    // --accept-new-host-keys once).
    writeFileSync(join(ex.root, '.keel', 'known_hosts'), readFileSync(join(ex.root, '.keel', 'target', 'known_hosts'), 'utf8'));

    // The vault: the seed's Ansible Vault file brought over with `keel secrets import-ansible`,
    // encrypted to an age identity (CI has ansible-vault; without it, keel secrets set).
    const secrets = {
      db_password: DB_PASSWORD,
      database_url: `postgresql://catalogage:${DB_PASSWORD}@localhost:5432/catalogage`,
      secret_key: 'django-insecure-example-001',
    };
    if (hasAnsibleVault) {
      const identity = await generateIdentity();
      process.env.KEEL_AGE_IDENTITY = identity;
      mkdirSync(join(ex.root, 'secrets'));
      writeFileSync(join(ex.root, 'secrets', 'test.recipients'), `${await identityToRecipient(identity)}\n`);
      const dir = join(ex.root, 'ops', 'ansible', 'secrets');
      mkdirSync(dir);
      writeFileSync(join(dir, 'staging.vault-password'), 'ansible-vault-password\n');
      writeFileSync(
        join(dir, 'plain.yaml'),
        Object.entries(secrets)
          .map(([k, v]) => `${k}: "${v}"\n`)
          .join(''),
      );
      execFileSync(
        'ansible-vault',
        ['encrypt', '--vault-password-file', join(dir, 'staging.vault-password'), '--output', join(dir, 'staging.enc'), join(dir, 'plain.yaml')],
        { stdio: 'ignore' },
      );
      rmSync(join(dir, 'plain.yaml'));
      // (Paths from this process's directory, as a shell's from yours: absolute here.)
      const r = await keel(ex, 'secrets', 'import-ansible', 'test', join(dir, 'staging.enc'), '--ansible-password-file', join(dir, 'staging.vault-password'));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/imported \S+\/ops\/ansible\/secrets\/staging\.enc into secrets\/test\.age \(3 keys\), encrypted to 1 recipient/);
    } else {
      console.log('seed-001: ansible-vault is not installed: the vault is made with keel secrets set instead of import-ansible');
      await passphraseVault(ex, secrets);
    }
    await provisionTwice(ex);
  }, 900_000);
  afterAll(() => finish(ex));

  it('keel deploy test --branch main: the page answers through nginx, uvicorn listens on 3579 under supervisor', async () => {
    const d = await deploy(ex, 'main');
    expect(d.code, d.out).toBe(0);
    expect(d.j.status).toBe('deployed');
    const ports = await recordedPorts(ex, 'web1-test');
    const page = await httpGet(ports.http, '/');
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/^version: v1$/m);
    expect(page.body).toMatch(new RegExp(`^revision: ${d.j.sha}$`, 'm'));
    // Each request adds a row in PostgreSQL and the page shows the total.
    const count = (body: string) => Number(/^count: (\d+)$/m.exec(body)?.[1]);
    expect(count((await httpGet(ports.http, '/')).body)).toBe(count(page.body) + 1);
    expect(await onTarget(ex, 'web1-test', `runuser -u postgres -- psql -tAc 'select count(*) from counter_hit' catalogage`)).toBe(`${count(page.body) + 1}\n`);
    expect((await httpGet(ports.http, '/ping')).body).toBe('pong');
    expect(await onTarget(ex, 'web1-test', "ss -Hltn 'sport = :3579'")).toMatch(/127\.0\.0\.1:3579\b/);
    // The process supervisor runs as `server-a` (slot a of `server`) is uvicorn on that port,
    // from the release's venv.
    expect(await onTarget(ex, 'web1-test', 'tr "\\0" " " < /proc/$(supervisorctl pid server-a)/cmdline')).toMatch(
      /^\/home\/catalogage\/webapp\/slots\/a\/\.venv\/bin\/python -m uvicorn --host 127\.0\.0\.1 --port 3579 .*sample\.asgi:application/,
    );
    expect(await onTarget(ex, 'web1-test', 'curl -s http://127.0.0.1:3579/ping')).toBe('pong');
    expect(await onTarget(ex, 'web1-test', 'supervisorctl status server-a')).toMatch(/^server-a\s+RUNNING/);
    expect(await onTarget(ex, 'web1-test', 'readlink /home/catalogage/webapp/current')).toBe(`releases/${d.j.release}\n`);
  });

  // Seed 001's app server is uvicorn, which has no graceful reload: before slots, every deploy
  // gave nginx's 502s (26 to 111 per deploy). A request loop through nginx counts them.
  it('uvicorn: a deploy with a migration, a code-only deploy and a rollback each fail 0 of the requests made during them', async () => {
    const web = exampleTarget(ex, 'web1-test');
    for (const [label, run] of [
      ['deploy v4 (a migration)', () => deploy(ex, 'v4')],
      ['deploy v4-code-only', () => deploy(ex, 'v4-code-only')],
      ['rollback', async () => ({ code: (await keel(ex, 'rollback', 'test', '--yes')).code })],
    ] as const) {
      const { result, counts } = await requestsDuring(web, run as () => Promise<{ code: number }>);
      console.log(`seed-001 uvicorn, ${label}: ${describeCounts(counts)}`);
      expect(result.code, label).toBe(0);
      expect(counts.total, label).toBeGreaterThan(10);
      expect(counts.failed, `${label}: ${JSON.stringify(counts.byStatus)}`).toBe(0);
    }
    // The other slot listens on 3580 now; nginx follows the live one.
    expect(await onTarget(ex, 'web1-test', '/usr/local/sbin/appctl-server live-slot')).toMatch(/^[ab]\n$/);
  });
});

const SEED_002 =
  'seed 002 (series de tiempo): the /home/devartis/webapp layout, gunicorn on its socket, firewall 22/80/443, ' +
  "Elasticsearch (stand-in for Elastic's repository) open to the private network only, logrotate";

describe(SEED_002, () => {
  let ex: Example;
  let web1Ip = '';
  let es1Ip = '';
  const ROOT = '/home/devartis/webapp';
  const REPO_PORT = 8088;

  beforeAll(async () => {
    ex = copyExample('seed-002-series-tiempo', 'staging');
    await upTargets(ex, ['web1', 'es1']);
    [web1Ip, es1Ip] = await Promise.all([privateAddress(ex, 'web1'), privateAddress(ex, 'es1')]);
    // Only web1 may reach Elasticsearch: its address on the targets' network. This machine is
    // on that network too (its gateway), and stays out.
    setLine(ex, 'inventories/staging.yaml', 'private_network', `[${web1Ip}/32]`);
    // Elastic's repository cannot be reached from here: the stand-in of
    // roles-elasticsearch.test.ts (an apt repository laid out and signed like Elastic's, with a
    // stand-in elasticsearch package) is built and served on es1's loopback, and the role's
    // repository variables point at it (-e, as an operator would point them at a mirror).
    const t0 = Date.now();
    await docker(['cp', join(repoRoot, 'test', 'fixtures', 'elasticsearch'), `${containerName(ex.root, 'es1')}:/root/standin`]);
    await onTarget(
      ex,
      'es1',
      'apt-get update -q >/dev/null && ' +
        'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gpg gpg-agent apt-utils python3 >/dev/null 2>&1 && ' +
        `sh /root/standin/build-repo.sh /root/standin /srv/elastic ${REPO_PORT} 8.19.21`,
    );
    console.log(`seed-002: stand-in Elastic repository on es1 in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    writeFileSync(
      join(ex.root, 'standin-elastic.yaml'),
      `elasticsearch_repo_url: http://127.0.0.1:${REPO_PORT}/packages/8.x/apt\n` +
        `elasticsearch_repo_key_url: http://127.0.0.1:${REPO_PORT}/GPG-KEY-elasticsearch\n`,
    );
    await passphraseVault(ex, { db_password: 'Series-s3cret', secret_key: 'django-insecure-example-002' });
    await provisionTwice(ex, '-e', `@${join(ex.root, 'standin-elastic.yaml')}`);
  }, 900_000);
  afterAll(() => finish(ex));

  it("keel deploy staging --branch main: the app answers through nginx from the seed's layout, gunicorn on sockets/gunicorn/gunicorn-a.sock", async () => {
    const d = await deploy(ex, 'main');
    expect(d.code, d.out).toBe(0);
    const ports = await recordedPorts(ex, 'web1');
    const page = await httpGet(ports.http, '/');
    expect(page.body).toMatch(/^version: v1$/m);
    expect((await httpGet(ports.http, '/static/counter/style.css')).status).toBe(200);
    // The seed's directories, with releases/<id> and `current` where the git clone in app/ was.
    expect(
      await onTarget(ex, 'web1', `cd ${ROOT} && for d in sockets logs config bin media static releases; do test -d $d && echo $d; done; readlink current`),
    ).toBe(`sockets\nlogs\nconfig\nbin\nmedia\nstatic\nreleases\nreleases/${d.j.release}\n`);
    // Slot a's socket, which nginx's upstream (an include the deploy switches) names.
    expect(
      await onTarget(
        ex,
        'web1',
        `test -S ${ROOT}/sockets/gunicorn/gunicorn-a.sock && grep -c "unix:${ROOT}/sockets/gunicorn/gunicorn-a.sock" /etc/keel/apps/*/slots/upstream.conf`,
      ),
    ).toBe('1\n');
    expect(await onTarget(ex, 'web1', `ls ${ROOT}/logs`)).toMatch(/gunicorn[\s\S]*nginx/);
  });

  it('Elasticsearch answers web1 on the private network and not this machine; web1 drops what is not 22/80/443', async () => {
    const health = JSON.parse(await onTarget(ex, 'web1', 'curl -sS -m 5 http://es1:9200/_cluster/health'));
    expect(health).toMatchObject({ cluster_name: 'series-tiempo', status: 'green' });
    expect(await probe(es1Ip, 9200)).toBe('timeout');
    expect(await probe(es1Ip, 9300)).toBe('timeout');
    expect(await onTarget(ex, 'es1', 'nft list chain inet keel input')).toContain(`ip saddr ${web1Ip} tcp dport 9200-9400 accept`);
    expect(await probe(web1Ip, 80)).toBe('open');
    // 443 is let through (nothing listens there without TLS: refused, not dropped).
    expect(await probe(web1Ip, 443)).toBe('refused');
    // PostgreSQL listens on localhost only: without the firewall this would be refused, not dropped.
    expect(await probe(web1Ip, 5432)).toBe('timeout');
  });

  it('logrotate accepts the configuration', async () => {
    expect(await codeOn(ex, 'web1', 'logrotate -d /etc/logrotate.d/webapp >/dev/null 2>&1')).toBe(0);
    expect(await onTarget(ex, 'web1', 'cat /etc/logrotate.d/webapp')).toContain(`${ROOT}/logs/nginx/`);
  });
});

const SECRETS_003 = { db_password: 'Aquamark-s3cret', secret_key: 'django-insecure-example-003' };

// On Debian 12 and on Debian 13: the same inventory, nothing pinned (PostgreSQL 15 or 17).
describe.each(['bookworm', 'trixie'] as const)(
  'seed 003 (aquamark) on %s: /ping gates the deploy; the recalculation and notification daemons restart with each deploy on its code',
  (distro) => {
    let ex: Example;
    const ROOT = '/home/aquamark/webapp';
    const daemons = ['recalc', 'notify'] as const;
    /** Each daemon's pid, working directory (its release) and last log line. */
    const state = async () => {
      const out: Record<string, { pid: string; cwd: string; log: string }> = {};
      for (const d of daemons) {
        const pid = (await onTarget(ex, 'backup1', `systemctl show -p MainPID --value aquamark-${d}`)).trim();
        // As the daemon's own user: docker exec's root lacks CAP_SYS_PTRACE for other users' /proc/<pid>/cwd.
        const cwd = (await onTarget(ex, 'backup1', `runuser -u aquamark -- readlink /proc/${pid}/cwd`)).trim();
        const log = (await onTarget(ex, 'backup1', `tail -n 1 ${ROOT}/logs/${d}/${d}.log`)).trim();
        out[d] = { pid, cwd, log };
      }
      return out;
    };
    const live = async (host: string) => (await onTarget(ex, host, `readlink ${ROOT}/current`)).trim();

    beforeAll(async () => {
      ex = copyExample('seed-003-aquamark', 'production');
      await upTargets(ex, ['web1', 'backup1'], distro);
      await passphraseVault(ex, SECRETS_003);
      await provisionTwice(ex);
    }, 900_000);
    afterAll(() => finish(ex));

    it("before any release the daemons wait; keel deploy production --branch main starts both on main's code, /ping through nginx", async () => {
      for (const d of daemons) {
        expect(await onTarget(ex, 'backup1', `systemctl is-enabled aquamark-${d}`), d).toBe('enabled\n');
        expect(await codeOn(ex, 'backup1', `systemctl is-active -q aquamark-${d}`), d).not.toBe(0);
      }
      const d = await deploy(ex, 'main');
      expect(d.code, d.out).toBe(0);
      await until('both daemons run', async () =>
        Object.values(await state()).every((s) => /^\d+$/.test(s.pid) && s.pid !== '0' && s.log.includes('revision')),
      );
      for (const [name, s] of Object.entries(await state())) {
        expect(s.cwd, name).toBe(`${ROOT}/releases/${d.j.release}`);
        expect(s.log, name).toMatch(new RegExp(`daemon: revision ${d.j.sha}$`));
      }
      const ports = await recordedPorts(ex, 'web1');
      expect((await httpGet(ports.http, '/ping')).body).toBe('pong');
      expect((await httpGet(ports.http, '/')).body).toMatch(/^version: v1$/m);
      // What the deploy started is what provision wants: a provision now changes nothing.
      const again = await provision(ex, 'provision (after the deploy)');
      expect(again.changed, JSON.stringify(changed(again))).toBe(0);
      // No vault value in a command line: the app server, both daemons, PostgreSQL.
      await expectNoSecretsInProcesses(ex, ['web1', 'backup1'], Object.values(SECRETS_003), {
        web1: [/-m gunicorn/],
        backup1: [/counter\.daemon recalculation/, /counter\.daemon notification/, /postgres/],
      });
    });

    it('a deploy restarts both daemons on the new release (new pids), web1 and backup1 switch together', async () => {
      const before = await state();
      const d = await deploy(ex, 'v4-code-only');
      expect(d.code, d.out).toBe(0);
      await until('both daemons logged the new revision', async () => Object.values(await state()).every((s) => s.log.endsWith(d.j.sha)));
      const after = await state();
      for (const name of daemons) {
        expect(after[name]!.pid, name).not.toBe(before[name]!.pid);
        expect(after[name]!.cwd, name).toBe(`${ROOT}/releases/${d.j.release}`);
      }
      expect(await live('web1')).toBe(`releases/${d.j.release}`);
      expect(await live('backup1')).toBe(`releases/${d.j.release}`);
      expect((await httpGet((await recordedPorts(ex, 'web1')).http, '/')).body).toMatch(/^change: code only$/m);
    });

    // The bad /ping is asked from the new release's own server before any switch: it is never
    // live anywhere, and the daemons are never restarted.
    it('a release whose /ping fails never goes live: the daemons keep running the previous release, never restarted', async () => {
      const previous = await live('web1');
      const before = await state();
      const d = await deploy(ex, 'v3-bad-health');
      expect(d.code, d.out).toBe(2);
      expect(d.j.status).toBe('failed');
      expect(d.j.error).toMatch(/check failed on web1 at check-web/);
      expect(d.j.error).toMatch(/before it got any traffic/);
      expect(await live('web1')).toBe(previous);
      expect(await live('backup1')).toBe(previous);
      const after = await state();
      for (const name of daemons) expect(after[name]!.pid, name).toBe(before[name]!.pid);
    });

    // A daemon that crashes at start is restarted by systemd again and again; between two
    // restarts `systemctl is-active` says active. It counts as started only once up for
    // daemon_min_uptime with no restart: the deploy fails, fast, and every host goes back.
    it('a release whose daemon crashes at start is switched back on every host; the daemons run the previous release', async () => {
      const previous = await live('web1');
      const started = Date.now();
      const d = await deploy(ex, 'v6-bad-daemon');
      const took = (Date.now() - started) / 1000;
      console.log(`seed-003: deploy of a crashing daemon: exit ${d.code} in ${took.toFixed(1)} s\n${d.j.error}`);
      expect(d.code, d.out).toBe(2);
      expect(d.j.status).toBe('rolled back');
      expect(d.j.error).toMatch(/health failed on backup1 at health-processes/);
      expect(d.j.error).toMatch(/aquamark-(recalc|notify)\.service: .*crash loop/);
      expect(await live('web1')).toBe(previous);
      expect(await live('backup1')).toBe(previous);
      await until('both daemons back on the previous release', async () => Object.values(await state()).every((s) => s.cwd === `${ROOT}/${previous}`));
      // Up again for good: their restart counters stay put.
      const restarts = async () => onTarget(ex, 'backup1', 'systemctl show -p NRestarts --value aquamark-recalc aquamark-notify');
      const r0 = await restarts();
      await until('the daemons stay up 4 s', async () => (await codeOn(ex, 'backup1', '/etc/keel/apps/aquamark/check.d/daemon-recalc')) === 0, 30_000);
      expect(await restarts()).toBe(r0);
    });
  },
);

describe('seed 000 (iaso): gunicorn as the systemd unit `web` on a web host, a worker host on the same release, two periodic jobs as systemd timers', () => {
  let ex: Example;
  const ROOT = '/var/app';

  beforeAll(async () => {
    ex = copyExample('seed-000-iaso', 'staging');
    await upTargets(ex, ['web1', 'worker1']);
    // No Slack here: the webhook is a port fetch refuses at once; a failed notification only warns.
    await passphraseVault(ex, { db_password: 'Iaso-s3cret', secret_key: 'django-insecure-example-000', slack_webhook: 'http://127.0.0.1:9/hook' });
    await provisionTwice(ex);
  }, 900_000);
  afterAll(() => finish(ex));

  it('keel deploy staging --branch main: web1 and worker1 on the same release, /var/app/current; gunicorn is the unit `web` (web@a)', async () => {
    const d = await deploy(ex, 'main');
    expect(d.code, d.out).toBe(0);
    for (const host of ['web1', 'worker1']) expect(await onTarget(ex, host, `readlink ${ROOT}/current`), host).toBe(`releases/${d.j.release}\n`);
    expect(d.j.hosts.map((h: any) => h.live)).toEqual([d.j.release, d.j.release]);
    // Slot a of the unit `web`: web@a.
    expect(await onTarget(ex, 'web1', 'systemctl is-active web@a')).toBe('active\n');
    expect(await onTarget(ex, 'web1', 'systemctl show -p ExecStart --value web@a')).toMatch(
      /^\{ path=\/var\/app\/bin\/run-app ; argv\[\]=\/var\/app\/bin\/run-app a ;/,
    );
    const pid = (await onTarget(ex, 'web1', 'systemctl show -p MainPID --value web@a')).trim();
    expect(await onTarget(ex, 'web1', `tr "\\0" " " < /proc/${pid}/cmdline`)).toMatch(/-m gunicorn .*sample\.wsgi:application/);
    // "gunicorn under the user web", its workers too.
    expect(await onTarget(ex, 'web1', `ps -o user= -p ${pid}; ps -o user= --ppid ${pid} | sort -u`)).toBe('web\nweb\n');
    expect((await httpGet((await recordedPorts(ex, 'web1')).http, '/')).body).toMatch(new RegExp(`^revision: ${d.j.sha}$`, 'm'));
  });

  it("systemctl list-timers shows both jobs; a job runs the release's code against the database", async () => {
    const timers = await onTarget(ex, 'worker1', 'systemctl list-timers --all --no-pager');
    expect(timers).toMatch(/iaso-nightly\.timer\s+iaso-nightly\.service/);
    expect(timers).toMatch(/iaso-sync\.timer\s+iaso-sync\.service/);
    await onTarget(ex, 'worker1', 'systemctl start iaso-sync.service');
    expect(await onTarget(ex, 'worker1', 'systemctl show -p Result --value iaso-sync.service')).toBe('success\n');
    const count = await onTarget(
      ex,
      'web1',
      `cd ${ROOT}/current && runuser -u web -- sh -c 'set -a; . ${ROOT}/config/app.env; set +a; .venv/bin/python manage.py jobcount sync'`,
    );
    expect(count.trim()).toBe('1');
  });

  // A release that fails after the switch (here its after_switch hook fails 4 s in) must never
  // run a job: the timers wait while a switch is on. A job every second tags its row with the
  // revision it ran; none carries the bad release's.
  it('timers are held during a switch: a release that fails after it runs no job (0 rows from it)', async () => {
    const every = join(ex.root, 'tick-every-second.yaml');
    writeFileSync(
      every,
      'timer_every: 1s\ntimer_on_calendar: ""\n' +
        'timer_command: "python -c \'import counter.jobs as j, sample.settings as s; j.record_job(\\"tick-\\" + s.APP_REVISION[:12])\'"\n',
    );
    const p = await provision(ex, 'timers every second', '-e', `@${every}`);
    expect(p.failed).toBe(0);
    const asWeb = (cmd: string) => `cd ${ROOT}/current && runuser -u web -- sh -c 'set -a; . ${ROOT}/config/app.env; set +a; ${cmd}'`;
    const rows = async (sha: string) => Number((await onTarget(ex, 'web1', asWeb(`.venv/bin/python manage.py jobcount tick-${sha.slice(0, 12)}`))).trim());
    const liveSha = (await onTarget(ex, 'web1', `cat ${ROOT}/current/REVISION`)).trim();
    await until('the timers run the live release every second', async () => (await rows(liveSha)) >= 2);
    const failing = join(ex.root, 'fail-after-switch.yaml');
    writeFileSync(failing, 'deploy_hooks: {after_switch: ["sleep 4; exit 1"]}\n');
    const d = await deploy(ex, 'v4-code-only', '-e', `@${every}`, '-e', `@${failing}`);
    expect(d.code, d.out).toBe(2);
    expect(d.j.status).toBe('rolled back');
    await until('the timers run again after the switch back', async () => (await rows(liveSha)) >= 4);
    expect(await rows(d.j.sha)).toBe(0);
    const back = await provision(ex, 'timers as in the inventory');
    expect(back.failed).toBe(0);
  });
});

const SEED_004 =
  "seed 004 (amy): /webapps/<domain>, TLS from certbot (pebble standing in for Let's Encrypt), maintenance page, gunicorn 3 workers, " +
  'Redis and PostgreSQL on their own hosts, rq worker and scheduler, dumps in DB_backups';

const SECRETS_004 = { db_password: 'Amy-s3cret', redis_password: 'e3b0c44298fc1c149afbf4c8996fb924', secret_key: 'django-insecure-example-004' };

describe(SEED_004, () => {
  let ex: Example;
  const DOMAIN = 'amy.keel.test';
  const ROOT = `/webapps/${DOMAIN}`;
  let redis1Ip = '';
  let db1Ip = '';
  let dump = '';
  const asApp = (cmd: string) => `cd ${ROOT}/current && runuser -u amy -- sh -c 'set -a; . ${ROOT}/config/app.env; set +a; ${cmd}'`;

  beforeAll(async () => {
    ex = copyExample('seed-004-amy', 'test');
    await upTargets(ex, ['web1', 'redis1', 'db1']);
    const web1Ip = await privateAddress(ex, 'web1');
    redis1Ip = await privateAddress(ex, 'redis1');
    db1Ip = await privateAddress(ex, 'db1');
    setLine(ex, 'inventories/test.yaml', 'web1_address', web1Ip);
    setLine(ex, 'inventories/test.yaml', 'redis1_address', redis1Ip);
    await passphraseVault(ex, SECRETS_004);
    await provisionTwice(ex);
  }, 900_000);
  afterAll(() => finish(ex));

  it('keel deploy test --branch main: a verified dump in DB_backups first; HTTPS with the certificate pebble issued', async () => {
    const d = await deploy(ex, 'main');
    expect(d.code, d.out).toBe(0);
    dump = d.j.dump.path;
    expect(dump).toBe(`${ROOT}/DB_backups/${d.j.release}.dump`);
    expect(await onTarget(ex, 'web1', `pg_restore --list ${dump} >/dev/null && stat -c '%U %a' ${dump}`)).toBe('amy 600\n');
    await onTarget(ex, 'web1', 'curl -sSk https://127.0.0.1:15000/roots/0 > /tmp/pebble-root.pem');
    expect(await onTarget(ex, 'web1', `curl -sS --cacert /tmp/pebble-root.pem https://${DOMAIN}/`)).toMatch(/^version: v1$/m);
    expect(
      await onTarget(
        ex,
        'web1',
        `echo | openssl s_client -connect 127.0.0.1:443 -servername ${DOMAIN} 2>/dev/null | openssl x509 -noout -issuer -ext subjectAltName`,
      ),
    ).toMatch(new RegExp(`issuer=CN = Pebble Intermediate CA[\\s\\S]*DNS:${DOMAIN.replace(/\./g, '\\.')}`));
    // From this machine: plain HTTP redirects to HTTPS, except the health path.
    const ports = await recordedPorts(ex, 'web1');
    const r = await httpGet(ports.http, '/', { Host: DOMAIN });
    expect([r.status, r.headers.location]).toEqual([301, `https://${DOMAIN}/`]);
  });

  const workersAndJobs =
    'gunicorn runs 3 workers under supervisor beside the rq worker and scheduler; ' +
    'jobs run (one through the scheduler) with Redis on redis1; redis1 and db1 drop this machine';
  it(workersAndJobs, async () => {
    const status = await onTarget(ex, 'web1', 'supervisorctl status');
    expect(status).toMatch(/^amy-a\s+RUNNING/m);
    expect(status).toMatch(/^amy-rq-default:amy-rq-default-1\s+RUNNING/m);
    expect(status).toMatch(/^amy-rq-default-scheduler\s+RUNNING/m);
    // The program `amy-a` (slot a of `amy`) is gunicorn's master (its pid file), with 3 workers.
    const master = (await onTarget(ex, 'web1', 'supervisorctl pid amy-a')).trim();
    expect(master).toBe((await onTarget(ex, 'web1', `cat ${ROOT}/sockets/gunicorn/gunicorn-a.pid`)).trim());
    expect((await onTarget(ex, 'web1', `ps --no-headers --ppid ${master} -o pid | wc -l`)).trim()).toBe('3');
    // A job now, and one in 2 s: the scheduler moves it to the queue when it is due.
    expect(await onTarget(ex, 'web1', asApp('.venv/bin/python manage.py enqueue example-004'))).toMatch(/^enqueued \S+ on default/);
    await onTarget(
      ex,
      'web1',
      asApp(
        '.venv/bin/python -c "from datetime import timedelta; import os; from redis import Redis; from rq import Queue; ' +
          'Queue(\\"default\\", connection=Redis.from_url(os.environ[\\"REDIS_URL\\"]))' +
          '.enqueue_in(timedelta(seconds=2), \\"counter.jobs.record_job\\", \\"scheduled-004\\")"',
      ),
    );
    const count = (tag: string) => async () => (await onTarget(ex, 'web1', asApp(`.venv/bin/python manage.py jobcount ${tag}`))).trim() === '1';
    await until('the job ran', count('example-004'));
    await until('the scheduled job ran', count('scheduled-004'), 60_000);
    expect(await onTarget(ex, 'web1', `grep -h scheduled-004 ${ROOT}/logs/rq/default-*.log | head -1`)).toMatch(/record_job\('scheduled-004'\)/);
    expect(await probe(redis1Ip, 6379)).toBe('timeout');
    expect(await probe(db1Ip, 5432)).toBe('timeout');
    // No vault value in any process's command line: gunicorn, the rq worker and scheduler (the
    // Redis URL with its password is in their environment, not their arguments), Redis, PostgreSQL.
    await expectNoSecretsInProcesses(ex, ['web1', 'redis1', 'db1'], Object.values(SECRETS_004), {
      web1: [/-m gunicorn/, /-m rq\.cli worker --worker-class keel_rq\.Worker default/, /-m rq\.cli worker --worker-class keel_rq\.Worker --with-scheduler/],
      redis1: [/redis-server/],
      db1: [/postgres/],
    });
  });

  // A deploy never kills a running job (issue 17): the workers get TERM, a warm shutdown, and
  // finish the job in hand first. Two jobs keep both workers (the worker and the scheduler,
  // which works the queue too) busy until the test has seen the switch (they wait for a file it
  // writes then), so the deploy certainly stops workers that are in the middle of a job. A job
  // enqueued meanwhile waits for the new workers and runs on the new release. Each job records
  // "<tag>@<revision>"; they do not set Django up (the workers do: rq_django_settings_module).
  it('a deploy lets the jobs in hand finish on the old release; a job enqueued during it runs after it, on the new release', async () => {
    const queue = 'q = Queue(\\"default\\", connection=Redis.from_url(os.environ[\\"REDIS_URL\\"]))';
    const py = (code: string) => `.venv/bin/python -c "import os; from redis import Redis; from rq import Queue; ${queue}; ${code}"`;
    const enqueue = (call: string) => onTarget(ex, 'web1', asApp(py(`q.enqueue(${call})`)));
    const count = async (tag: string) => Number((await onTarget(ex, 'web1', asApp(`.venv/bin/python manage.py jobcount ${tag}`))).trim());
    const old = (await onTarget(ex, 'web1', `cat ${ROOT}/current/REVISION`)).trim().slice(0, 12);
    const flag = '/tmp/keel-jobs-may-end';
    await onTarget(ex, 'web1', `rm -f ${flag}`);
    await enqueue(`\\"counter.plain_jobs.record_when\\", \\"held1\\", \\"${flag}\\"`);
    await enqueue(`\\"counter.plain_jobs.record_when\\", \\"held2\\", \\"${flag}\\"`);
    // Both workers have taken one (nothing left in the queue).
    await until('both held jobs started', async () => (await onTarget(ex, 'web1', asApp(py('print(len(q))')))).trim() === '0');
    const oldRelease = (await onTarget(ex, 'web1', `readlink ${ROOT}/current`)).trim();
    const deploying = deploy(ex, 'v4-code-only');
    await enqueue('\\"counter.plain_jobs.record\\", \\"during\\"');
    try {
      await until('the deploy switched releases', async () => (await onTarget(ex, 'web1', `readlink ${ROOT}/current`)).trim() !== oldRelease, 240_000);
    } finally {
      await onTarget(ex, 'web1', `touch ${flag}`);
    }
    const d = await deploying;
    expect(d.code, d.out).toBe(0);
    const neu = d.j.sha.slice(0, 12);
    expect(neu).not.toBe(old);
    try {
      await until('the job enqueued during the deploy ran', async () => (await count(`during@${neu}`)) === 1, 60_000);
    } catch (err) {
      const failed =
        'from rq.registry import FailedJobRegistry; r = FailedJobRegistry(queue=q); ' +
        '[print(j.id, j.func_name, j.exc_info) for j in [q.fetch_job(i) for i in r.get_job_ids()] if j]';
      const diag = [
        await onTarget(ex, 'web1', asApp(py(failed))).catch((e) => String(e)),
        await onTarget(ex, 'web1', asApp(py('print(len(q), q.job_ids)'))).catch((e) => String(e)),
        await onTarget(ex, 'web1', `tail -n 40 ${ROOT}/logs/rq/*.log`).catch((e) => String(e)),
        await onTarget(ex, 'web1', 'supervisorctl status').catch((e) => String(e)),
      ];
      throw new Error(`${(err as Error).message}\n${diag.join('\n----\n')}`);
    }
    expect([await count(`held1@${old}`), await count(`held2@${old}`), await count(`during@${old}`)]).toEqual([1, 1, 0]);
    // No job failed (a killed work horse would be in the failed registry).
    expect((await onTarget(ex, 'web1', asApp(py('from rq.registry import FailedJobRegistry; print(len(FailedJobRegistry(queue=q)))')))).trim()).toBe('0');
  });

  it('keel maintenance on: 503 with the page while maintenance_on.html exists (the health path still answers); off: the app again', async () => {
    const https = () => onTarget(ex, 'web1', `curl -s -w '\\n%{http_code}' --cacert /tmp/pebble-root.pem https://${DOMAIN}/`);
    const on = await keel(ex, 'maintenance', 'on', 'test');
    expect(on.code, on.stdout + on.stderr).toBe(0);
    expect(await codeOn(ex, 'web1', `test -f ${ROOT}/maintenance_on.html`)).toBe(0);
    expect(await https()).toMatch(/maintenance[\s\S]*\n503$/i);
    expect(await onTarget(ex, 'web1', `curl -s -H 'Host: ${DOMAIN}' http://127.0.0.1/ping`)).toBe('pong');
    expect((await keel(ex, 'maintenance', 'status', 'test')).stdout).toMatch(/^web1: ON/m);
    const off = await keel(ex, 'maintenance', 'off', 'test');
    expect(off.code, off.stdout + off.stderr).toBe(0);
    expect(await codeOn(ex, 'web1', `test -e ${ROOT}/maintenance_on.html`)).not.toBe(0);
    expect(await https()).toMatch(/^version: \S+$[\s\S]*\n200$/m);
    const again = await keel(ex, 'maintenance', 'off', 'test');
    expect(again.stdout).toMatch(/maintenance was already off/);
    expect((await keel(ex, 'maintenance', 'status', 'test')).stdout).toMatch(/^web1: off$/m);
  });

  // With the default settings the health check bypasses the maintenance page (nginx and the
  // deploy share app_health_path): a good release deployed with --maintenance goes live.
  it('keel deploy --maintenance with the default settings deploys a good release, and ends with maintenance off', async () => {
    const d = await deploy(ex, 'v4-code-only', '--maintenance');
    expect(d.code, d.out).toBe(0);
    expect(d.j.status).toBe('deployed');
    expect(await codeOn(ex, 'web1', `test -e ${ROOT}/maintenance_on.html`)).not.toBe(0);
    expect(await onTarget(ex, 'web1', `curl -s --cacert /tmp/pebble-root.pem https://${DOMAIN}/`)).toMatch(/^change: code only$/m);
  });
});
