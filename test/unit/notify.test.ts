// deploy_notify against a local HTTP server on 127.0.0.1 that records what it receives: what a
// Slack-compatible and a generic webhook get for each event, that secrets never reach them,
// and that a webhook that fails, refuses or hangs only warns, within its timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InterruptedError } from '../../src/errors.js';
import { Notifier, deployEnd, firstLine, notifyTargets, runContext, slackText, withNotices, type Notice, type NoticeBase } from '../../src/deploy/notify.js';
import { Redactor } from '../../src/report/redact.js';

interface Received {
  path: string;
  type: string | undefined;
  body: any;
}
let server: Server;
let base = '';
let closedPort = 0;
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', type: req.headers['content-type'], body: JSON.parse(body) });
      if (req.url?.startsWith('/hang')) return; // never answers
      if (req.url?.startsWith('/fail')) return void res.writeHead(500).end('internal trouble\n');
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port nothing listens on: bound, then closed.
  const other = createServer();
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  closedPort = (other.address() as AddressInfo).port;
  await new Promise<void>((r) => other.close(() => r()));
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const SECRET = 'Db-pa55word-XYZ';
const deployBase: NoticeBase = {
  command: 'deploy',
  env: 'staging',
  branch: 'main',
  sha: 'e10b02cfcde7'.padEnd(40, '0'),
  release: '20261201-101500Z-e10b02cfcde7',
  who: 'alice (GitHub Actions)',
  url: 'https://github.com/o/r/actions/runs/42',
  hosts: ['web1', 'worker1'],
};

function notifier(entries: unknown[], warnings: string[] = []) {
  const redactor = new Redactor().add([SECRET, `${base}/slack/T0/B0/SLACKTOKEN`]);
  return new Notifier(notifyTargets(entries, 'inv.yaml'), { mask: (s) => redactor.mask(s), warn: (l) => warnings.push(l) });
}

describe('deploy_notify', () => {
  it('a deploy: start then success to both webhooks; Slack gets a line, the JSON webhook the fields; no secret in either', async () => {
    received.length = 0;
    const n = notifier([{ slack: `${base}/slack/T0/B0/SLACKTOKEN` }, { webhook: `${base}/hook` }]);
    const out = await withNotices(
      n,
      deployBase,
      async () => ({ status: 'deployed', error: null }),
      (r) => ({ event: 'success', result: r.status, error: r.error }),
    );
    expect(out.status).toBe('deployed');
    const deliveries = await n.settle();
    expect(deliveries.map((d) => [d.event, d.ok])).toEqual([
      ['start', true],
      ['start', true],
      ['success', true],
      ['success', true],
    ]);
    // Deliveries run concurrently: found by where they went and what they say, not by order.
    expect(received.map((r) => `${r.path} ${r.type}`).sort()).toEqual([
      '/hook application/json',
      '/hook application/json',
      '/slack/T0/B0/SLACKTOKEN application/json',
      '/slack/T0/B0/SLACKTOKEN application/json',
    ]);
    const slack = received.filter((r) => r.path.startsWith('/slack')).map((r) => r.body.text as string);
    const hook = received.filter((r) => r.path === '/hook').map((r) => r.body);
    expect(slack).toContain(
      ':arrow_forward: *staging*: deploy of *main* @ `e10b02cfcde7` started by alice (GitHub Actions) (web1, worker1) ' +
        '<https://github.com/o/r/actions/runs/42|CI run>',
    );
    expect(slack.find((t) => t.startsWith(':white_check_mark:'))).toMatch(
      /^:white_check_mark: \*staging\*: deploy of \*main\* @ `e10b02cfcde7` deployed as 20261201-101500Z-e10b02cfcde7 \(web1, worker1\) after \d+\.\d s, by al/,
    );
    expect(hook.find((b) => b.event === 'success')).toEqual({
      keel: 1,
      ...deployBase,
      event: 'success',
      result: 'deployed',
      durationMs: expect.any(Number),
      error: null,
    });
    expect(hook.find((b) => b.event === 'start')).toMatchObject({ event: 'start', result: 'started', durationMs: null });
    expect(JSON.stringify(received)).not.toContain(SECRET);
  });

  it('a failure: the first error line, masked; only the events a webhook asked for', async () => {
    received.length = 0;
    const n = notifier([{ slack: `${base}/slack/T0/B0/SLACKTOKEN`, events: ['failure', 'rollback'] }, { webhook: `${base}/hook` }]);
    const err = await withNotices(
      n,
      deployBase,
      async () => {
        throw new Error(`migrate failed on web1 at migrate (exit 1) while applying 0002:\n  | FATAL: password "${SECRET}" rejected\n  | more`);
      },
      () => ({ event: 'success', result: 'deployed', error: null }),
    ).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^migrate failed/);
    expect(received.map((r) => `${r.path} ${r.body.event ?? r.body.text.slice(0, 3)}`).sort()).toEqual([
      '/hook failure',
      '/hook start',
      '/slack/T0/B0/SLACKTOKEN :x:',
    ]);
    const failure = received.find((r) => r.body.event === 'failure')!.body;
    expect(failure.error).toBe('migrate failed on web1 at migrate (exit 1) while applying 0002: FATAL: password "******" rejected');
    expect(received.find((r) => r.path.startsWith('/slack'))!.body.text).toContain('FAILED after');
    expect(JSON.stringify(received)).not.toContain(SECRET);
  });

  it('a deploy rolled back, an interrupt, keel rollback and a restore say so', () => {
    const end = (over: Partial<Notice>): Notice => ({ ...deployBase, event: 'success', result: '', durationMs: 12_300, error: null, ...over });
    expect(slackText(end({ event: 'rollback', result: 'rolled back', error: 'health failed on web1 at health-web' }))).toMatch(
      /^:warning: \*staging\*: deploy of .* ROLLED BACK after 12\.3 s, by alice \(GitHub Actions\): every host is back on its previous release: health failed/,
    );
    expect(slackText(end({ command: 'rollback', release: 'r1', result: 'rolled back to r1' }))).toMatch(
      /^:white_check_mark: \*staging\*: rollback to r1 rolled back to r1 \(/,
    );
    expect(slackText(end({ command: 'backup restore', dump: '/srv/b/r1.dump', event: 'failure', error: 'web1: restore FAILED' }))).toMatch(
      /^:x: \*staging\*: backup restore of \/srv\/b\/r1\.dump FAILED after 12\.3 s/,
    );
    expect(slackText(end({ branch: 'feat/<x>&y' }))).toContain('*feat/&lt;x&gt;&amp;y*');
  });

  it("a deploy's status is the notice's event: deployed -> success, rolled back -> rollback, failed -> failure", () => {
    expect(deployEnd({ status: 'deployed', error: null })).toEqual({ event: 'success', result: 'deployed', error: null });
    expect(deployEnd({ status: 'rolled back', error: 'health failed on web1 at health-web (exit 1):\n  | GET /ping answered 502' })).toEqual({
      event: 'rollback',
      result: 'rolled back',
      error: 'health failed on web1 at health-web (exit 1): GET /ping answered 502',
    });
    expect(deployEnd({ status: 'failed', error: 'build failed' }).event).toBe('failure');
  });

  it('an interrupted run ends with a failure notice "interrupted"', async () => {
    received.length = 0;
    const n = notifier([{ webhook: `${base}/hook` }]);
    await withNotices(
      n,
      deployBase,
      async () => {
        throw new InterruptedError('SIGINT', []);
      },
      () => ({ event: 'success', result: '', error: null }),
    ).catch(() => undefined);
    expect(received.map((r) => `${r.body.event} ${r.body.result}`).sort()).toEqual(['failure interrupted', 'start started']);
  });

  it('a webhook that answers 500, refuses or hangs: a warning each, within its timeout; the others are delivered', async () => {
    received.length = 0;
    const warnings: string[] = [];
    const n = notifier(
      [
        { webhook: `${base}/fail` },
        { webhook: `http://127.0.0.1:${closedPort}/x` },
        { webhook: `${base}/hang`, timeout: 1 },
        { slack: `${base}/slack/T0/B0/SLACKTOKEN` },
      ],
      warnings,
    );
    const started = Date.now();
    const r = await withNotices(
      n,
      deployBase,
      async () => 'deployed',
      () => ({ event: 'success', result: 'deployed', error: null }),
    );
    const took = Date.now() - started;
    expect(r).toBe('deployed');
    const d = await n.settle();
    expect(d.filter((x) => x.ok).map((x) => x.target)).toEqual([`deploy_notify[3] (slack, ${base.slice(7)})`, `deploy_notify[3] (slack, ${base.slice(7)})`]);
    expect(warnings).toHaveLength(6);
    expect(warnings).toContain(
      `warning: notification deploy_notify[0] (webhook, ${base.slice(7)}) of "start" failed: HTTP 500 (internal trouble); ` +
        "the deploy's result is not changed by it",
    );
    expect(warnings.filter((w) => w.includes('ECONNREFUSED'))).toHaveLength(2);
    expect(warnings.filter((w) => w.includes('no answer within 1 s'))).toHaveLength(2);
    // A target's notices go one after the other (its channel never shows the end first): the
    // hanging one costs one timeout per notice here, since the run itself took no time.
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(10_000);
    // No warning shows a URL's path (a Slack URL's path is its token).
    expect(warnings.join('\n')).not.toMatch(/SLACKTOKEN|\/fail|\/hang/);
  });

  it('deploy_notify entries are checked without echoing the URL', () => {
    expect(() => notifyTargets([{ slack: 'x', webhook: 'y' }], 'inv.yaml')).toThrow(/^inv\.yaml: deploy_notify\[0\]: give either slack: .* not both/);
    expect(() => notifyTargets([{}], 'inv.yaml')).toThrow(/not neither/);
    const bad = () => notifyTargets([{ slack: 'hooks.slack.com/services/T0/B0/SECRETPATH' }], 'inv.yaml');
    expect(bad).toThrow(/deploy_notify\[0\]\.slack: not an http\(s\) URL/);
    expect(bad).not.toThrow(/SECRETPATH/);
    expect(notifyTargets([{ webhook: 'https://ops.example.org/h', events: ['failure'], timeout: 3 }], 'inv.yaml')).toEqual([
      { label: 'deploy_notify[0] (webhook, ops.example.org)', kind: 'webhook', url: 'https://ops.example.org/h', events: ['failure'], timeoutMs: 3000 },
    ]);
  });

  it('who and which CI run: GitHub Actions, GitLab CI, or user@host', () => {
    const gh = runContext({
      GITHUB_ACTIONS: 'true',
      GITHUB_RUN_ID: '7',
      GITHUB_REPOSITORY: 'o/r',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_ACTOR: 'bob',
    });
    expect(gh).toEqual({ who: 'bob (GitHub Actions)', url: 'https://github.com/o/r/actions/runs/7' });
    expect(runContext({ GITLAB_CI: 'true', GITLAB_USER_LOGIN: 'eve', CI_JOB_URL: 'https://gitlab.com/o/r/-/jobs/9' })).toEqual({
      who: 'eve (GitLab CI)',
      url: 'https://gitlab.com/o/r/-/jobs/9',
    });
    expect(runContext({}).who).toMatch(/^\S+@\S+$/);
    expect(firstLine('\n  build failed on web1 at build-1 (exit 2):\n  | npm ERR! missing script\n')).toBe(
      'build failed on web1 at build-1 (exit 2): npm ERR! missing script',
    );
  });
});
