// keel deploy from CI, as seed 000 deploys (examples/seed-000-iaso/ci/): the app's repository
// holds the keel project in deploy/ and the workflows; each pipeline is a fresh checkout, and
// runs the commands of the workflow file itself the way a runner does (helpers/ci-runner.ts):
// no terminal, no stdin, CI=true, a HOME without SSH keys, the vault's age identity, the SSH
// key and known_hosts only in environment variables. One provisioned stack (web1, worker1 of
// seed 000 on the warm image) for the whole file; the scenarios build on each other:
//
//   missing secrets -> GitHub push (C1) -> GitLab (C2) -> a retried C1 refused -> C1 with
//   --allow-older and webhooks that fail -> C3 and C4 pipelines at once (C4 waits) -> a stale
//   lock -> keel rollback -> keel backup restore
//
// A local HTTP server on 127.0.0.1 stands for Slack and for a JSON webhook, and records what
// it receives: every delivery is counted, and no secret may be in any of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { vaultContext } from '../../src/vault/store.js';
import { initVault, setSecret } from '../../src/vault/operations.js';
import { archive } from '../../src/deploy/source.js';
import { copyExample, finish, httpGet, onTarget, codeOn, recordedPorts, repoRoot, upTargets, type Example } from '../helpers/examples.js';
import { exited, runKeel, spawnKeel } from '../helpers/cli.js';
import { githubCheckout, gitlabCheckout, runGithubJob, runGitlabJob, runKeelOnRunner, runnerEnv, type PipelineRun } from '../helpers/ci-runner.js';
import { until } from '../helpers/wait.js';

const ROOT = '/var/app';
const DB_PASSWORD = 'Iaso-ci-s3cret';
const SECRET_KEY = 'django-insecure-ci-000-key';
const SLACK_TOKEN = 'XoxbSlackT0ken9876';

let ex: Example;
let origin = '';
let home = '';
let server: Server;
let hooks = '';
const received: { path: string; body: any }[] = [];
let identity = '';
let sshKey = '';
let knownHosts = '';
let httpPort = 0;
const workspaces: string[] = [];
const saved = { ...process.env };

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-C', cwd, '-c', 'user.name=Iaso Dev', '-c', 'user.email=dev@iaso.invalid', '-c', 'commit.gpgsign=false', ...args], {
    encoding: 'utf8',
  }).trim();
const commit = (message: string) => {
  git(origin, 'add', '-A');
  git(origin, 'commit', '-q', '-m', message);
  return git(origin, 'rev-parse', 'HEAD');
};
const secrets = () => ({ KEEL_AGE_IDENTITY: identity, KEEL_SSH_PRIVATE_KEY: sshKey, KEEL_SSH_KNOWN_HOSTS: knownHosts });
/** Every value no output, report or webhook may hold. */
const leaks = () => [DB_PASSWORD, SECRET_KEY, SLACK_TOKEN, identity, ...sshKey.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))];

let runs = 0;
/** A push to main (or a manual run) of the GitHub workflow, in a fresh checkout of `sha`. */
async function github(sha: string, o: { without?: string; onOutput?: (s: string) => void } = {}): Promise<PipelineRun> {
  const ws = githubCheckout(origin, 'main', sha);
  workspaces.push(ws);
  const s: Record<string, string> = secrets();
  if (o.without) s[o.without] = ''; // GitHub passes an unset secret as ""
  const r = await runGithubJob({
    workflow: '.github/workflows/deploy.yml',
    ws,
    event: 'push',
    secrets: s,
    github: { sha, ref_name: 'main', actor: 'alice', run_id: String(++runs), repository: 'blsq/iaso' },
    home,
    onOutput: o.onOutput,
  });
  console.log(`github pipeline ${sha.slice(0, 8)}: exit ${r.code}, ${r.report?.status ?? 'no report'}, ${(r.ms / 1000).toFixed(1)} s`);
  return r;
}

/** A pipeline of the GitLab job on the default branch, in GitLab's kind of checkout. */
async function gitlab(sha: string, o: { onOutput?: (s: string) => void } = {}): Promise<PipelineRun> {
  const ws = gitlabCheckout(origin, 'main', sha);
  workspaces.push(ws);
  const r = await runGitlabJob({
    ws,
    home,
    variables: {
      ...secrets(),
      CI_COMMIT_SHA: sha,
      CI_COMMIT_BRANCH: 'main',
      CI_DEFAULT_BRANCH: 'main',
      CI_PIPELINE_SOURCE: 'push',
      GITLAB_USER_LOGIN: 'bob',
      CI_JOB_URL: `https://gitlab.example/iaso/-/jobs/${++runs}`,
    },
    onOutput: o.onOutput,
  });
  console.log(`gitlab pipeline ${sha.slice(0, 8)}: exit ${r.code}, ${r.report?.status ?? 'no report'}, ${(r.ms / 1000).toFixed(1)} s`);
  return r;
}

/** keel by hand on a runner (a fresh checkout of `sha`, the runner's environment and secrets). */
async function keelCi(sha: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const ws = githubCheckout(origin, 'main', sha);
  workspaces.push(ws);
  const env = runnerEnv(home, { ...secrets(), GITHUB_ACTIONS: 'true', GITHUB_ACTOR: 'carol', GITHUB_RUN_ID: String(++runs), GITHUB_REPOSITORY: 'blsq/iaso' });
  return runKeelOnRunner(join(ws, 'deploy'), args, env);
}

const live = async (host: string) => (await onTarget(ex, host, `readlink ${ROOT}/current`)).trim().replace(/^releases\//, '');
const lockFree = async () =>
  (await codeOn(ex, 'web1', 'test ! -e /var/lib/keel/lock')) === 0 && (await codeOn(ex, 'worker1', 'test ! -e /var/lib/keel/lock')) === 0;
/** Deliveries received since `from`, as "path event" (the Slack ones by their emoji). */
const since = (from: number) =>
  received.slice(from).map((r) => `${r.path === '/hook' ? 'hook' : 'slack'} ${r.body.event ?? /^:(\w+):/.exec(r.body.text)?.[1]}`);
const bodies = () => JSON.stringify(received.map((r) => r.body));
const noLeak = (text: string) => {
  for (const s of leaks()) expect(text.includes(s), `a secret leaked: ${s.slice(0, 6)}...`).toBe(false);
};

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(body) });
      if (req.url === '/fail') return void res.writeHead(500).end('no');
      if (req.url === '/hang') return; // never answers
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hooks = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  ex = copyExample('seed-000-iaso', 'staging');
  await upTargets(ex, ['web1', 'worker1']);
  const [web1, worker1] = [await recordedPorts(ex, 'web1'), await recordedPorts(ex, 'worker1')];
  httpPort = web1.http;
  sshKey = readFileSync(join(ex.root, '.keel', 'target', 'id_ed25519'), 'utf8');
  knownHosts = readFileSync(join(ex.root, '.keel', 'target', 'known_hosts'), 'utf8');
  home = mkdtempSync(join(tmpdir(), 'keel-runner-home-'));

  // The app's repository as the team keeps it: the sample app (with its front-end), the CI
  // files of examples/seed-000-iaso/ci/, and the keel project in deploy/: the example's
  // inventory with the hosts' addresses (as any real one has) and the repository itself as
  // the code (deploy_repo "..": named, as keel asks for a repository above the project), and
  // its vault, encrypted to the CI identity.
  origin = join(ex.root, '.keel', 'app-repo');
  const ci = join(repoRoot, 'examples', 'seed-000-iaso', 'ci');
  cpSync(join(ci, '.github'), join(origin, '.github'), { recursive: true });
  cpSync(join(ci, '.gitlab-ci.yml'), join(origin, '.gitlab-ci.yml'));
  writeFileSync(join(origin, '.gitattributes'), readFileSync(join(origin, '.gitattributes'), 'utf8') + readFileSync(join(ci, 'gitattributes'), 'utf8'));
  const project = join(origin, 'deploy');
  mkdirSync(project);
  cpSync(join(ci, 'deploy', 'package.json'), join(project, 'package.json'));
  writeFileSync(join(project, '.gitignore'), 'node_modules/\n.keel/\nkeel-deploy.json\n');
  const inventory = readFileSync(join(ex.root, 'inventories', 'staging.yaml'), 'utf8');
  const ciInventory = inventory
    .replace(/^ {2}deploy_repo: .*$/m, '  deploy_repo: ".."')
    .replace('  web1: {target: web1, groups: [web]}', `  web1: {address: 127.0.0.1, port: ${web1.ssh}, user: root, groups: [web]}`)
    .replace('  worker1: {target: worker1, groups: [worker]}', `  worker1: {address: 127.0.0.1, port: ${worker1.ssh}, user: root, groups: [worker]}`)
    .replace('    - slack: "{{secrets.slack_webhook}}"\n', `    - slack: "{{secrets.slack_webhook}}"\n    - webhook: ${hooks}/hook\n`);
  expect(ciInventory.match(/address: 127\.0\.0\.1/g)).toHaveLength(2);
  expect(ciInventory).toContain(`webhook: ${hooks}/hook`);
  mkdirSync(join(project, 'inventories'));
  writeFileSync(join(project, 'inventories', 'staging.yaml'), ciInventory);
  identity = await generateIdentity();
  const vc = vaultContext(project, 'staging', { interactive: false, vars: { KEEL_AGE_IDENTITY: identity }, home });
  await initVault(vc, [await identityToRecipient(identity)]);
  await setSecret(vc, 'db_password', DB_PASSWORD);
  await setSecret(vc, 'secret_key', SECRET_KEY);
  await setSecret(vc, 'slack_webhook', `${hooks}/services/T000/B000/${SLACK_TOKEN}`);

  // Provisioned by hand once (not part of the deploy pipeline), with the same secrets.
  Object.assign(process.env, secrets());
  delete process.env.KEEL_VAULT_PASSWORD;
  const p = await runKeel(['provision', 'staging', '--output', 'json'], { root: project });
  expect(p.code, p.stdout + p.stderr).toBe(0);
  // The first spawn builds dist/ (what npx keel runs).
  const v = await spawnKeel(['--version'], { root: project });
  v.stdin.end();
  expect((await exited(v)).code).toBe(0);
}, 900_000);

afterAll(async () => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  server?.closeAllConnections();
  server?.close();
  for (const ws of workspaces) rmSync(ws, { recursive: true, force: true });
  if (home) rmSync(home, { recursive: true, force: true });
  await finish(ex);
});

describe('seed 000 deployed from CI', () => {
  let c1 = '';
  let r1: any;
  let r2: any;

  it('a missing secret is an error naming the variable, at once; nothing asks; nothing is deployed', async () => {
    c1 = commit('Deploy from CI: keel project in deploy/, workflows');
    const noIdentity = await github(c1, { without: 'KEEL_AGE_IDENTITY' });
    expect(noIdentity.code, noIdentity.stderr).toBe(1);
    expect(noIdentity.stderr).toMatch(/no age identity was found/);
    expect(noIdentity.stderr).toMatch(/hint: set KEEL_AGE_IDENTITY/);
    expect(noIdentity.report).toBe(null);

    const before = received.length;
    const noKey = await github(c1, { without: 'KEEL_SSH_PRIVATE_KEY' });
    expect(noKey.code, noKey.stderr).toBe(2);
    expect(noKey.stderr).toMatch(/web1: no credentials to offer root@127\.0\.0\.1:\d+/);
    expect(noKey.stderr).toMatch(/set KEEL_SSH_PRIVATE_KEY/);
    // Found before the local build: no npm ran.
    expect(noKey.stderr).not.toMatch(/local-build/);
    const noKnown = await github(c1, { without: 'KEEL_SSH_KNOWN_HOSTS' });
    expect(noKnown.code, noKnown.stderr).toBe(2);
    expect(noKnown.stderr).toMatch(/is not in \S+known_hosts \(its key is/);
    expect(noKnown.stderr).toMatch(/put those lines in \$KEEL_SSH_KNOWN_HOSTS/);
    // Each started and failed: a start and a failure per webhook, the failure saying why.
    expect(since(before).sort()).toEqual([
      'hook failure',
      'hook failure',
      'hook start',
      'hook start',
      'slack arrow_forward',
      'slack arrow_forward',
      'slack x',
      'slack x',
    ]);
    expect(received.slice(before).find((r) => r.path === '/hook' && r.body.event === 'failure')!.body.error).toMatch(/KEEL_SSH_PRIVATE_KEY|no credentials/);
    expect(await codeOn(ex, 'web1', `test -e ${ROOT}/current`)).not.toBe(0);
    expect(await lockFree()).toBe(true);
  });

  it('GitHub, push to main: the front-end is built on the runner and shipped, both hosts on one release, Slack and the webhook told', async () => {
    const before = received.length;
    const r = await github(c1);
    expect(r.code, r.stderr).toBe(0);
    r1 = r.report;
    expect(r1).toMatchObject({ env: 'staging', branch: 'main', sha: c1, status: 'deployed', error: null, rolledBack: false });
    // Progress went to the log (stderr) while stdout held the report alone.
    expect(r.stderr).toMatch(/^controller {2}local-build\/build-1 {2}ok/m);
    expect(r.stderr).toMatch(/^web1 {2}switch\/switch {2}ok/m);
    expect(r1.localBuild.outputs).toEqual([{ path: 'counter/static/counter/dist', files: 1, bytes: expect.any(Number) }]);
    expect(r1.hosts.map((h: any) => [h.name, h.live])).toEqual([
      ['web1', r1.release],
      ['worker1', r1.release],
    ]);
    for (const h of ['web1', 'worker1']) {
      expect(await live(h)).toBe(r1.release);
      // The app reads its release and commit; the archive's sum is recorded with them.
      expect(await onTarget(ex, h, `cat ${ROOT}/current/RELEASE ${ROOT}/current/REVISION`)).toBe(`${r1.release}\n${c1}\n`);
      expect(await onTarget(ex, h, `grep archive_sha256 ${ROOT}/current/.keel-release`)).toBe(`archive_sha256=${r1.archive.sha256}\n`);
      // The host never needed Node; the front-end's sources and the keel project stayed out.
      expect(await codeOn(ex, h, 'command -v node || command -v npm')).not.toBe(0);
      expect(await onTarget(ex, h, `ls -A ${ROOT}/current`)).not.toMatch(/^(frontend|deploy|\.github)$/m);
    }
    // Built from the commit, stamped with the release, served by nginx; never committed.
    const js = await httpGet(httpPort, '/static/counter/dist/app.js', { Host: 'localhost' });
    expect(js.status).toBe(200);
    expect(js.body).toContain(`"${r1.release}"`);
    expect(js.body).toContain(`"${c1}"`);
    expect(git(origin, 'ls-tree', '-r', '--name-only', c1)).not.toMatch(/counter\/static\/counter\/dist/);
    // The archive is the commit plus the outputs: made again here from both, the same bytes.
    const shipped = Buffer.from(await onTarget(ex, 'web1', `base64 -w0 ${ROOT}/current/counter/static/counter/dist/app.js`), 'base64');
    const again = await archive({ repo: origin, kind: 'local', branch: 'main', sha: c1, subdir: '' }, [
      { path: 'counter/static/counter/dist', type: 'dir' },
      { path: 'counter/static/counter/dist/app.js', type: 'file', data: shipped },
    ]);
    expect(createHash('sha256').update(again).digest('hex')).toBe(r1.archive.sha256);
    // Two notices per webhook: start then success, with what happened and who did it.
    expect(since(before)).toHaveLength(4);
    const hook = received.slice(before).filter((x) => x.path === '/hook');
    expect(hook.map((x) => x.body.event)).toEqual(['start', 'success']);
    expect(hook[1]!.body).toMatchObject({
      command: 'deploy',
      env: 'staging',
      branch: 'main',
      sha: c1,
      release: r1.release,
      who: 'alice (GitHub Actions)',
      url: `https://github.com/blsq/iaso/actions/runs/${runs}`,
      hosts: ['web1', 'worker1'],
      result: 'deployed',
      error: null,
    });
    expect(hook[1]!.body.durationMs).toBeGreaterThan(0);
    const slack = received.slice(before).filter((x) => x.path.startsWith('/services/'));
    expect(slack.map((x) => x.path)).toEqual([`/services/T000/B000/${SLACK_TOKEN}`, `/services/T000/B000/${SLACK_TOKEN}`]);
    expect(slack[1]!.body.text).toMatch(
      new RegExp(`^:white_check_mark: \\*staging\\*: deploy of \\*main\\* @ \`${c1.slice(0, 12)}\` deployed as ${r1.release}`),
    );
    expect(r1.notifications.map((n: any) => `${n.event} ${n.ok}`)).toEqual(['start true', 'start true', 'success true', 'success true']);
    // (The Slack URL's path is its token: it is where a delivery goes, never what it says.)
    const logs = join(r.ws, 'deploy', '.keel', 'logs');
    const log = readdirSync(logs)
      .map((f) => readFileSync(join(logs, f), 'utf8'))
      .join('');
    expect(log).toMatch(/"event":"end","status":"deployed"/);
    noLeak(bodies() + r.stdout + r.stderr + JSON.stringify(r1) + log);
    expect(await lockFree()).toBe(true);
  });

  it('GitLab, the next commit: its checkout has the branch as origin/main only; deployed over C1', async () => {
    writeFileSync(
      join(origin, 'frontend', 'src', 'release.js'),
      readFileSync(join(origin, 'frontend', 'src', 'release.js'), 'utf8').replace('front-end of', 'front-end v2 of'),
    );
    const c2 = commit('Front-end v2');
    const before = received.length;
    const r = await gitlab(c2);
    expect(r.code, r.stderr).toBe(0);
    r2 = r.report;
    expect(r2).toMatchObject({ sha: c2, status: 'deployed' });
    expect(r2.hosts.map((h: any) => h.previous)).toEqual([r1.release, r1.release]);
    expect((await httpGet(httpPort, '/static/counter/dist/app.js', { Host: 'localhost' })).body).toContain('front-end v2 of release');
    expect(await live('worker1')).toBe(r2.release);
    const hook = received.slice(before).filter((x) => x.path === '/hook');
    expect(hook.map((x) => `${x.body.event} ${x.body.who}`)).toEqual(['start bob (GitLab CI)', 'success bob (GitLab CI)']);
    expect(hook[1]!.body.url).toMatch(/^https:\/\/gitlab\.example\/iaso\/-\/jobs\/\d+$/);
  });

  it('a retried pipeline of C1 (older than the live C2) is refused: exit 1, live release unchanged, the failure notified', async () => {
    const before = received.length;
    const releasesBefore = await onTarget(ex, 'web1', `ls ${ROOT}/releases`);
    const r = await github(c1);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `error: refusing to deploy main @ ${c1.slice(0, 12)}: it is older than what web1, worker1 run \\(release ${r2.release}, commit ${r2.sha.slice(0, 12)}`,
      ),
    );
    expect(r.stderr).toMatch(/hint: to go back on purpose: keel rollback staging .* --allow-older/);
    expect(r.report).toBe(null);
    for (const h of ['web1', 'worker1']) expect(await live(h)).toBe(r2.release);
    // Refused under the lock, before any phase: no release was even built.
    expect(await onTarget(ex, 'web1', `ls ${ROOT}/releases`)).toBe(releasesBefore);
    expect(await lockFree()).toBe(true);
    const hook = received.slice(before).filter((x) => x.path === '/hook');
    expect(hook.map((x) => x.body.event)).toEqual(['start', 'failure']);
    expect(hook[1]!.body.error).toMatch(/^refusing to deploy main @ \w{12}: it is older than/);
    expect(since(before)).toHaveLength(4);
  });

  it('--allow-older deploys it; webhooks that fail, refuse or hang only warn, and the deploy is not held longer than their timeout', async () => {
    // This deploy's own notification settings (-e, as a one-off): one good webhook, three bad.
    const extra = join(home, 'bad-hooks.yaml');
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    writeFileSync(
      extra,
      'deploy_notify:\n' +
        `  - {webhook: "${hooks}/hook"}\n  - {webhook: "${hooks}/fail"}\n` +
        `  - {webhook: "http://127.0.0.1:${closedPort}/x"}\n  - {webhook: "${hooks}/hang", timeout: 2}\n`,
    );
    const before = received.length;
    const started = Date.now();
    const r = await keelCi(c1, ['deploy', 'staging', '--branch', 'main', '--ref', c1, '--allow-older', '--output', 'json', '-e', `@${extra}`]);
    const took = Date.now() - started;
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ sha: c1, status: 'deployed' });
    expect(r.stderr).toMatch(/note: --allow-older: not checked whether \w{12} is newer/);
    expect(r.stderr.match(/^warning: notification deploy_notify\[\d\] .* failed: .*; the deploy's result is not changed by it$/gm)).toHaveLength(6);
    expect(r.stderr).toMatch(/deploy_notify\[3\] \(webhook, 127\.0\.0\.1:\d+\) of "success" failed: no answer within 2 s/);
    expect(j.notifications.filter((n: any) => n.ok)).toHaveLength(2);
    for (const h of ['web1', 'worker1']) expect(await live(h)).toBe(j.release);
    // Good and bad alike received start and success (the hanging one never answered).
    expect(
      received
        .slice(before)
        .map((x) => `${x.path} ${x.body.event}`)
        .sort(),
    ).toEqual(['/fail start', '/fail success', '/hang start', '/hang success', '/hook start', '/hook success']);
    console.log(`deploy with a hanging webhook (timeout 2 s): ${(took / 1000).toFixed(1)} s in all`);
    expect(j.durationMs).toBeLessThan(took);
  });

  it('two pushes in a row: the second pipeline waits for the first, saying for whom, then deploys; a short --wait-lock gives up', async () => {
    // C3's deploy holds in its build until the test opens a gate on the hosts: the pipelines
    // overlap for certain, not by luck of timing.
    const inv = join(origin, 'deploy', 'inventories', 'staging.yaml');
    const gate = '/tmp/keel-ci-gate';
    const hold = `i=0; until [ -e ${gate} ] || [ $i -ge 900 ]; do sleep 0.2; i=$((i + 1)); done`;
    writeFileSync(inv, readFileSync(inv, 'utf8').replace('vars:\n', `vars:\n  deploy_hooks: {before_build: ["${hold}"]}\n`));
    const c3 = commit('A build that waits for a gate (test)');
    writeFileSync(join(origin, 'VERSION'), 'v4\n');
    const c4 = commit('v4');
    const first = github(c3);
    const owner = () => onTarget(ex, 'web1', 'cat /var/lib/keel/lock/owner 2>/dev/null || true');
    await until("C3's pipeline holds the lock", async () => (await owner()).includes(`release=`) && (await owner()).includes(c3.slice(0, 12)), {
      ms: 240_000,
      every: 200,
    });
    let waiting = '';
    const second = gitlab(c4, { onOutput: (s) => (waiting = s) });
    // A third run, with a short bound: it gives up, naming the holder, and changes nothing.
    const third = await keelCi(c4, ['deploy', 'staging', '--branch', 'main', '--wait-lock', '3s', '--output', 'json']);
    expect(third.code, third.stderr).toBe(2);
    expect(third.stderr).toMatch(/^waiting for .*`keel deploy staging --branch main` \(branch main, release \S+\), since \S+, started by alice/m);
    expect(third.stderr).toMatch(/error: web1 is locked by .*; gave up after waiting 3s \(--wait-lock\)\nnothing was deployed/);
    expect(third.stdout).toBe('');
    await until('the second pipeline says it waits', async () => /waiting for /.test(waiting), { ms: 240_000, every: 200 });
    for (const h of ['web1', 'worker1']) await onTarget(ex, h, `touch ${gate}`);
    const [r3, r4] = await Promise.all([first, second]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(r4.code, r4.stderr).toBe(0);
    console.log(
      `two pipelines in a row: C3 deployed in ${(r3.ms / 1000).toFixed(1)} s (held at the gate), C4 waited for it and deployed, ` +
        `${(r4.ms / 1000).toFixed(1)} s in all; a third run gave up after --wait-lock 3s`,
    );
    expect(r4.stderr).toMatch(
      new RegExp(
        `^waiting for \\S+ \\(pid \\d+\\), \`keel deploy staging --branch main\` \\(branch main, release ${r3.report.release}\\), since \\S+, ` +
          'started by alice \\(GitHub Actions\\) in https://github\\.com/blsq/iaso/actions/runs/\\d+: web1 is locked \\(giving up in \\d+m\\d*s?\\)$',
        'm',
      ),
    );
    expect(r3.stderr).not.toMatch(/waiting for /);
    expect(r4.report.hosts.map((h: any) => h.previous)).toEqual([r3.report.release, r3.report.release]);
    for (const h of ['web1', 'worker1']) expect(await live(h)).toBe(r4.report.release);
    expect(await lockFree()).toBe(true);
  });

  it('a stale lock is not waited for: --wait-lock 10m fails at once, saying so', async () => {
    await onTarget(
      ex,
      'web1',
      'mkdir /var/lib/keel/lock && ' +
        'printf "run_id=gone\\ncommand=deploy staging\\nuser=runner\\ncontroller=ci-1\\npid=1\\n" > /var/lib/keel/lock/owner && ' +
        'printf "holder_pid=999999\\nholder_start=1\\n" >> /var/lib/keel/lock/owner',
    );
    try {
      const started = Date.now();
      const r = await keelCi(c1, ['deploy', 'staging', '--branch', 'main', '--wait-lock', '10m']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/web1 is locked by a run that is gone \(stale lock\): .*--wait-lock does not wait for it/);
      expect(r.stderr).toMatch(/hint: a stale lock stays until you clear it/);
      expect(r.stderr).not.toMatch(/waiting for/);
      expect(Date.now() - started).toBeLessThan(120_000);
    } finally {
      await onTarget(ex, 'web1', 'rm -rf /var/lib/keel/lock');
    }
  });

  it('keel rollback and keel backup restore notify too', async () => {
    const before = received.length;
    const head = git(origin, 'rev-parse', 'HEAD');
    const back = await keelCi(head, ['rollback', 'staging', '--output', 'json']);
    expect(back.code, back.stderr).toBe(0);
    const to = JSON.parse(back.stdout).to;
    const hook = () => received.slice(before).filter((x) => x.path === '/hook');
    expect(hook().map((x) => `${x.body.command} ${x.body.event}`)).toEqual(['rollback start', 'rollback success']);
    expect(hook()[1]!.body).toMatchObject({ release: to, result: `rolled back to ${to}`, hosts: ['web1', 'worker1'] });
    expect(hook()[1]!.body.sha).toMatch(/^[0-9a-f]{40}$/);

    const dumps = await runKeel(['backups', 'staging', '--output', 'json'], { root: join(origin, 'deploy') });
    const dump = dumps.json().dumps[0].path;
    const restored = await keelCi(head, ['backup', 'restore', 'staging', dump, '--yes', '--output', 'json']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(hook().map((x) => `${x.body.command} ${x.body.event}`)).toEqual([
      'rollback start',
      'rollback success',
      'backup restore start',
      'backup restore success',
    ]);
    expect(hook()[3]!.body).toMatchObject({ dump, result: 'restored', hosts: ['web1'] });
    noLeak(bodies() + back.stdout + back.stderr + restored.stdout + restored.stderr);
  });
});
