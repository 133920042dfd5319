// Built-in role `elasticsearch` on a real target, against a STAND-IN for Elastic's repository:
// Elastic's repository cannot be reached from the test machines, so the test builds on the
// target a local apt repository laid out like Elastic's (packages/8.x/apt, stable, main), signed
// with a throwaway gpg key, served over HTTP on the target's loopback, whose `elasticsearch`
// package is keel's stand-in (test/fixtures/elasticsearch: a python3 HTTP server answering / and
// /_cluster/health from elasticsearch.yml, packaged like Elastic's, security auto-configuration
// included). Everything the role does is real: key download, deb822 source with Signed-By, apt
// pinning, the package at the pinned version, configuration, systemd, the health check, and
// the firewall, reached from this machine over the Docker bridge.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { tempProject, writeInventory } from '../helpers/project.js';
import { probe, sh, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, provisionItest } from '../helpers/cli.js';

const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'elasticsearch');
const REPO_PORT = 8088;
const PINNED = '8.19.21';
const NEWER = '8.19.22';

let es: TestTarget;
let root: string;
let ip: string;
let subnet: string;

/** GET from this machine, through the target's firewall. */
async function get(path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://${ip}:9200${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.json() };
}

function inventory(version: string, privateNetwork: string): void {
  writeInventory(root, es, {
    host: 'es1',
    group: 'search',
    roles: ['firewall', 'elasticsearch'],
    vars: `  elasticsearch_repo_url: http://127.0.0.1:${REPO_PORT}/packages/8.x/apt
  elasticsearch_repo_key_url: http://127.0.0.1:${REPO_PORT}/GPG-KEY-elasticsearch
  elasticsearch_version: "${version}"
  elasticsearch_cluster_name: catalog-search
  elasticsearch_heap_size: 256m
  firewall_public_tcp_ports: []
  firewall_rules:
    - {port: 9200, to_port: 9400, from: ${privateNetwork}, comment: "elasticsearch: private network only"}`,
  });
}

beforeAll(async () => {
  es = await startTarget({ name: 'es1' });
  const t0 = Date.now();
  // Tools to build and sign the stand-in repository (Debian's), on the target itself.
  await sh(
    es,
    'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gpg gpg-agent apt-utils python3 >/dev/null',
  );
  await es.container.copyDirectoriesToContainer([{ source: FIXTURE, target: '/root/standin' }]);
  await sh(es, `sh /root/standin/build-repo.sh /root/standin /srv/elastic ${REPO_PORT} ${PINNED} ${NEWER}`);
  console.log(`stand-in repository built and served in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  ip = (await sh(es, "ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1")).trim();
  subnet = (await sh(es, "ip -4 route show dev eth0 scope link | awk '{print $1}'")).trim();
  expect(subnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
  root = tempProject('role-es');
  inventory(PINNED, subnet);
});
afterAll(async () => {
  await es?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("role elasticsearch (stand-in for Elastic's repository and package)", () => {
  it('adds the signed repository, pins and installs the version, configures, starts, is healthy from the private network, converges', async () => {
    const first = await provisionItest(root, 'elasticsearch first run');
    expect(first.changed).toBeGreaterThan(8);
    const second = await provisionItest(root, 'elasticsearch second run');
    expect(second.changed, JSON.stringify(changedIds(second))).toBe(0);
    expect(second.hosts[0].roundTrips).toBe(1);

    // From this machine, on the bridge (the "private network" the firewall admits).
    const health = await get('/_cluster/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ cluster_name: 'catalog-search', status: 'green', number_of_nodes: 1 });
    const info = await get('/');
    expect(info.body).toMatchObject({ name: 'es1', cluster_name: 'catalog-search', version: { number: PINNED } });
    const jvm = await get('/_nodes/_local/jvm');
    expect(Object.values<any>(jvm.body.nodes)[0].jvm.mem.heap_max_in_bytes).toBe(256 * 1024 * 1024);

    // network.host [_local_, _site_]: loopback and the private address, nothing else.
    const listen = await sh(es, "ss -Hltn 'sport = :9200' | awk '{print $4}' | sort | tr '\\n' ' '");
    expect(listen.trim()).toBe(['127.0.0.1:9200', `${ip}:9200`].sort().join(' '));
    expect(await sh(es, 'systemctl is-enabled elasticsearch')).toBe('enabled\n');

    // The repository: deb822 source with Signed-By, the key kept for it alone.
    expect(await sh(es, 'cat /etc/apt/sources.list.d/elasticsearch.sources')).toBe(
      `Types: deb\nURIs: http://127.0.0.1:${REPO_PORT}/packages/8.x/apt\nSuites: stable\nComponents: main\nSigned-By: /etc/apt/keyrings/elasticsearch.asc\n`,
    );
    expect(await sh(es, 'head -n 1 /etc/apt/keyrings/elasticsearch.asc')).toBe('-----BEGIN PGP PUBLIC KEY BLOCK-----\n');
    // The pin holds although the repository has a newer version.
    const policy = await sh(es, 'apt-cache policy elasticsearch');
    expect(policy).toMatch(new RegExp(`Installed: ${PINNED}\\n\\s+Candidate: ${PINNED}\\n`));
    expect(policy).toContain(NEWER);
    expect(await sh(es, 'apt-get -s -q upgrade | grep -c "^Inst elasticsearch" || true')).toBe('0\n');

    // The configuration went in before the package: its security auto-configuration was skipped.
    expect(await sh(es, 'cat /etc/elasticsearch/elasticsearch.keystore')).toBe('keystore.seed\n');
    const yml = await sh(es, 'cat /etc/elasticsearch/elasticsearch.yml');
    expect(yml).toContain('xpack.security.enabled: false');
    expect(yml).not.toContain('AUTO CONFIGURATION');
    expect(await sh(es, "stat -c '%U %G %a' /etc/elasticsearch/elasticsearch.yml /etc/elasticsearch/jvm.options.d/heap.options /var/lib/elasticsearch")).toBe(
      'root elasticsearch 640\nroot elasticsearch 640\nelasticsearch elasticsearch 2750\n',
    );
  });

  it('a new pinned version upgrades and restarts; a firewall rule for another network drops this machine', async () => {
    inventory(NEWER, '10.0.0.0/8');
    const r = await provisionItest(root, 'elasticsearch upgrade');
    const ids = changedIds(r);
    expect(ids).toContain('elasticsearch/template:/etc/apt/preferences.d/elasticsearch');
    expect(ids).toContain(`elasticsearch/package:elasticsearch=${NEWER}`);
    expect(ids).toContain('handler/elasticsearch:restart elasticsearch');
    expect(await sh(es, 'curl -fsS http://127.0.0.1:9200/')).toContain(`"number": "${NEWER}"`);
    // The upgrade kept keel's configuration (dpkg --force-confold).
    expect(await sh(es, 'grep -c "^cluster.name: \\"catalog-search\\"" /etc/elasticsearch/elasticsearch.yml')).toBe('1\n');
    expect(await probe(ip, 9200)).toBe('timeout');
    expect(await probe(ip, 9300)).toBe('timeout');
    const again = await provisionItest(root, 'elasticsearch after upgrade');
    expect(again.changed, JSON.stringify(changedIds(again))).toBe(0);
  });
});
