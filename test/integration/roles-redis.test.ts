// Built-in role `redis` on real targets: Debian's redis-server from the mirror in a systemd
// Debian container, over real SSH, with the password from a real vault. Seed 004 wants Redis on
// its own machine: a second container plays the app host and talks to Redis over the Docker
// bridge (RESP through bash's /dev/tcp: no client to install), while the firewall role on the
// Redis host accepts 6379 from that address only; this machine (the bridge gateway) is dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setVaultPassword, tempProject, writeInventory, writeSecrets } from '../helpers/project.js';
import { probe, sh, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, provisionItest, runKeel } from '../helpers/cli.js';

const VAULT_PASSWORD = 'itest-vault-passphrase';
// Spaces, both quotes, a backslash, $(), # and non-ASCII: redis.conf needs them escaped.
const REDIS_PASSWORD = `s3cret "quoted" 'single' \\ $(id) #not-a-comment é`;

let redis: TestTarget;
let app: TestTarget;
let root: string;
let redisIp: string;
let appIp: string;
let restoreVaultPassword = () => {};

/** redis-cli on the Redis host; the password travels in the environment, as REDISCLI_AUTH. */
async function cli(args: string[], password?: string): Promise<string> {
  const env = password === undefined ? [] : [`REDISCLI_AUTH=${password}`];
  const r = await redis.exec(['env', ...env, 'redis-cli', ...args]);
  return (r.stdout + r.stderr).trim();
}

/** RESP commands from the app host to Redis over the network, then QUIT; Redis's replies. */
async function fromApp(commands: string[][]): Promise<string> {
  const resp = [...commands, ['QUIT']].map((c) => `*${c.length}\r\n` + c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')).join('');
  const b64 = Buffer.from(resp).toString('base64');
  const r = await app.exec(['bash', '-c', 'exec 3<>"/dev/tcp/$0/6379" && base64 -d <<<"$1" >&3 && timeout 5 cat <&3', redisIp, b64]);
  return r.stdout;
}

function inventory(vars: string): void {
  writeInventory(root, redis, {
    host: 'redis1',
    group: 'cache',
    roles: ['firewall', 'redis'],
    vars: `  firewall_public_tcp_ports: []
  firewall_rules:
    - {port: 6379, from: ${appIp}/32, comment: "redis: app1 only"}
  redis_bind: [127.0.0.1, ${redisIp}]
  redis_maxmemory: 64mb
  redis_maxmemory_policy: allkeys-lru
${vars}`,
  });
}

beforeAll(async () => {
  restoreVaultPassword = setVaultPassword(VAULT_PASSWORD);
  [redis, app] = await Promise.all([startTarget({ name: 'redis1' }), startTarget({ name: 'app1' })]);
  const ipOf = async (t: TestTarget) => (await sh(t, "ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1")).trim();
  [redisIp, appIp] = await Promise.all([ipOf(redis), ipOf(app)]);
  expect(redisIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  root = tempProject('role-redis');
  inventory('  redis_persistence: rdb');
  await writeSecrets(root, VAULT_PASSWORD, { redis_password: REDIS_PASSWORD });
});
afterAll(async () => {
  restoreVaultPassword();
  await Promise.all([redis?.stop(), app?.stop()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('role redis (own host, firewall open to the app host only)', () => {
  it('installs and configures Redis with the vault password, converges, answers only with the password', async () => {
    const first = await provisionItest(root, 'redis first run');
    expect(first.changed).toBeGreaterThan(5);
    const second = await provisionItest(root, 'redis second run');
    expect(second.changed, JSON.stringify(changedIds(second))).toBe(0);
    expect(second.hosts[0].roundTrips).toBe(1);

    expect(await cli(['ping'])).toMatch(/NOAUTH/);
    expect(await cli(['ping'], 'wrong')).toMatch(/WRONGPASS|invalid password/);
    expect(await cli(['ping'], REDIS_PASSWORD)).toBe('PONG');
    expect(await cli(['config', 'get', 'maxmemory'], REDIS_PASSWORD)).toBe('maxmemory\n67108864');
    expect(await cli(['config', 'get', 'maxmemory-policy'], REDIS_PASSWORD)).toBe('maxmemory-policy\nallkeys-lru');
    expect(await cli(['config', 'get', 'appendonly'], REDIS_PASSWORD)).toBe('appendonly\nno');

    // Listening on exactly the configured addresses.
    const listen = await sh(redis, "ss -Hltn 'sport = :6379' | awk '{print $4}' | sort | tr '\\n' ' '");
    expect(listen.trim()).toBe([`127.0.0.1:6379`, `${redisIp}:6379`].sort().join(' '));

    // The password file: root:redis 0640, never printed; the config dir is root's.
    const files = await sh(
      redis,
      "stat -c '%n %U %G %a' /etc/redis /etc/redis/redis.conf /etc/redis/keel-auth.conf; dpkg-statoverride --list /etc/redis/redis.conf",
    );
    expect(files).toBe(
      '/etc/redis root redis 2750\n/etc/redis/redis.conf root redis 640\n/etc/redis/keel-auth.conf root redis 640\nroot redis 640 /etc/redis/redis.conf\n',
    );
    expect(JSON.stringify(first) + JSON.stringify(second)).not.toContain('s3cret');
    expect(await sh(redis, 'systemctl is-enabled redis-server; systemctl is-active redis-server')).toBe('enabled\nactive\n');

    // rdb: a key survives a restart of the service.
    expect(await cli(['set', 'k1', 'v1'], REDIS_PASSWORD)).toBe('OK');
    await sh(redis, 'systemctl restart redis-server');
    expect(await cli(['get', 'k1'], REDIS_PASSWORD)).toBe('v1');
  });

  it('the app host reaches Redis over the network with the password; this machine is dropped by the firewall', async () => {
    expect(await fromApp([['AUTH', REDIS_PASSWORD], ['PING'], ['GET', 'k1']])).toBe('+OK\r\n+PONG\r\n$2\r\nv1\r\n+OK\r\n');
    expect(await fromApp([['PING']])).toMatch(/^-NOAUTH/);
    // Redis listens on its private address; only the firewall stands between it and us.
    expect(await probe(redisIp, 6379)).toBe('timeout');
    expect(await probe(redisIp, 22)).toBe('open');
    const rules = await sh(redis, 'nft list table inet keel');
    expect(rules).toContain(`ip saddr ${appIp} tcp dport 6379 accept`);
  });

  it('rdb -> aof keeps the data (Redis alone would start empty); with aof a key survives a restart', async () => {
    inventory('  redis_persistence: aof');
    const r = await provisionItest(root, 'redis aof');
    expect(changedIds(r)).toEqual(['redis/template:/etc/redis/redis.conf', 'handler/redis:restart redis']);
    expect(await cli(['config', 'get', 'appendonly'], REDIS_PASSWORD)).toBe('appendonly\nyes');
    expect(await cli(['get', 'k1'], REDIS_PASSWORD)).toBe('v1');
    expect(await cli(['set', 'k2', 'v2'], REDIS_PASSWORD)).toBe('OK');
    await sh(redis, 'systemctl restart redis-server');
    expect(await cli(['mget', 'k1', 'k2'], REDIS_PASSWORD)).toBe('v1\nv2');
    const again = await provisionItest(root, 'redis aof again');
    expect(again.changed).toBe(0);
  });

  it('a directive Redis refuses is not installed: the old redis.conf stays and Redis keeps answering (exit 2)', async () => {
    const before = await sh(redis, 'cat /etc/redis/redis.conf');
    inventory('  redis_persistence: aof\n  redis_config: {maxmemory-samples: many}');
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    inventory('  redis_persistence: aof');
    expect(r.code, r.stdout).toBe(2);
    const failed = r.json().hosts[0].resources.find((x: any) => x.status === 'failed');
    expect(failed.id).toBe('redis/template:/etc/redis/redis.conf');
    expect(failed.output).toMatch(/FATAL CONFIG FILE ERROR[\s\S]*maxmemory-samples/);
    expect(await sh(redis, 'cat /etc/redis/redis.conf')).toBe(before);
    expect(await cli(['get', 'k2'], REDIS_PASSWORD)).toBe('v2');
    expect(readFileSync(join(root, 'inventories', 'itest.yaml'), 'utf8')).not.toContain('many');
  });
  it('aof -> rdb keeps the data too; none starts empty, the old files kept aside', async () => {
    inventory('  redis_persistence: rdb');
    const r = await provisionItest(root, 'redis back to rdb');
    expect(changedIds(r)).toEqual(['redis/template:/etc/redis/redis.conf', 'handler/redis:restart redis']);
    expect(await cli(['config', 'get', 'appendonly'], REDIS_PASSWORD)).toBe('appendonly\nno');
    expect(await cli(['mget', 'k1', 'k2'], REDIS_PASSWORD)).toBe('v1\nv2');

    inventory('  redis_persistence: none');
    await provisionItest(root, 'redis none');
    expect(await cli(['dbsize'], REDIS_PASSWORD)).toBe('0');
    expect(await sh(redis, 'ls /var/lib/redis')).toContain('dump.rdb.before-none');
    expect(await cli(['config', 'get', 'save'], REDIS_PASSWORD)).toBe('save');
  });
});
