// Built-in role `postgres` on a real target: Debian's PostgreSQL from the mirror, in a systemd
// Debian container, over real SSH. The owner role's password comes from a real vault
// (secrets/itest.age, passphrase from KEEL_VAULT_PASSWORD); psql then logs in with it over TCP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setVaultPassword, tempProject, writeInventory, writeSecrets } from '../helpers/project.js';
import { startTarget, type TestTarget } from '../helpers/target.js';
import { runKeel } from '../helpers/cli.js';

const VAULT_PASSWORD = 'itest-vault-passphrase';
// Quotes, $(), backslash and a psql variable: nothing may be interpreted on the way.
const DB_PASSWORD = `it's "s3cret" $(id) \\ :'pw' ;`;
const NEW_PASSWORD = 'rotated-Pa55word';

let target: TestTarget;
let root: string;
let restoreVaultPassword = () => {};

async function psql(password: string, sql: string, user = 'shop', db = 'shop') {
  return target.exec(['env', `PGPASSWORD=${password}`, 'psql', '-X', '-h', '127.0.0.1', '-U', user, '-d', db, '-tAc', sql]);
}

beforeAll(async () => {
  restoreVaultPassword = setVaultPassword(VAULT_PASSWORD);
  target = await startTarget();
  root = tempProject('role-pg');
  writeInventory(root, target, {
    host: 'db1',
    group: 'db',
    roles: ['postgres'],
    vars: `  postgres_database: shop
  postgres_user: shop
  postgres_password: "{{secrets.db_password}}"
  postgres_listen_addresses: "*"
  postgres_extensions: [pg_trgm, uuid-ossp]
  postgres_hba:
    - {type: host, database: shop, user: shop, address: 10.0.0.0/8, method: scram-sha-256}`,
  });
  await writeSecrets(root, VAULT_PASSWORD, { db_password: DB_PASSWORD });
});
afterAll(async () => {
  restoreVaultPassword();
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('role postgres', () => {
  it('installs PostgreSQL, creates the database and its owner with the vault password, converges', async () => {
    let t0 = Date.now();
    const first = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const firstMs = Date.now() - t0;
    const a = first.json();
    expect(a.failed, first.stdout).toBe(0);
    expect(first.code).toBe(0);
    expect(first.stdout).not.toContain('s3cret');

    t0 = Date.now();
    const second = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const secondMs = Date.now() - t0;
    const b = second.json();
    expect(second.code).toBe(0);
    expect(b.changed, second.stdout).toBe(0);
    expect(b.hosts[0].roundTrips).toBe(1);
    console.log(`postgres: first run ${firstMs} ms (${a.changed} changed), second run ${secondMs} ms (0 changed)`);

    // The app role logs in over TCP with the vault's password; a wrong one is refused.
    const ok = await psql(
      DB_PASSWORD,
      "select current_user || ' ' || current_database() || ' ' || pg_encoding_to_char(encoding) from pg_database where datname = current_database()",
    );
    expect(ok.stderr).toBe('');
    expect(ok.stdout.trim()).toBe('shop shop UTF8');
    const wrong = await psql('not-the-password', 'select 1');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/password authentication failed for user "shop"/);

    const ext = await psql(DB_PASSWORD, "select string_agg(extname, ',' order by extname) from pg_extension");
    expect(ext.stdout.trim()).toBe('pg_trgm,plpgsql,uuid-ossp');
    const owner = await psql(DB_PASSWORD, "select pg_get_userbyid(datdba) from pg_database where datname = 'shop'");
    expect(owner.stdout.trim()).toBe('shop');

    const files = await target.exec([
      'sh',
      '-c',
      `
      stat -c '%U %G %a' /etc/postgresql/keel/shop.password
      ss -Hltn 'sport = :5432' | awk '{print $4}' | sort | tr '\\n' ' '; echo
      grep -P '^host\\tshop\\tshop\\t10.0.0.0/8\\tscram-sha-256$' /etc/postgresql/15/main/pg_hba.conf`,
    ]);
    const lines = files.stdout.split('\n');
    expect(lines[0]).toBe('postgres postgres 600');
    expect(lines[1]).toMatch(/0\.0\.0\.0:5432/); // listen_addresses '*' took effect (restart handler)
    expect(lines[2]).toContain('10.0.0.0/8');
  });

  it('a new password in the vault is set on the next run; the old one stops working', async () => {
    await writeSecrets(root, VAULT_PASSWORD, { db_password: NEW_PASSWORD });
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(r.code, r.stdout).toBe(0);
    const ids = r
      .json()
      .hosts[0].resources.filter((x: any) => x.status === 'changed')
      .map((x: any) => x.id);
    expect(ids).toEqual(['postgres/file:/etc/postgresql/keel/shop.password', 'handler/postgres:set password']);
    expect(r.stdout).not.toContain(NEW_PASSWORD);
    expect((await psql(NEW_PASSWORD, 'select 1')).stdout.trim()).toBe('1');
    expect((await psql(DB_PASSWORD, 'select 1')).code).not.toBe(0);
    const again = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(again.json().changed).toBe(0);
  });

  it('a database given to another owner and a dropped extension are put back by the next run, then 0 changed', async () => {
    const asPostgres = (sql: string) => target.exec(['runuser', '-u', 'postgres', '--', 'psql', '-XtAc', sql, '-d', 'shop']);
    expect((await asPostgres('ALTER DATABASE shop OWNER TO postgres')).code).toBe(0);
    expect((await asPostgres('DROP EXTENSION pg_trgm')).code).toBe(0);
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(r.code, r.stdout).toBe(0);
    const changed = r
      .json()
      .hosts[0].resources.filter((x: any) => x.status === 'changed')
      .map((x: any) => x.id);
    expect(changed).toHaveLength(2);
    expect(changed.every((id: string) => id.startsWith('postgres/command:'))).toBe(true);
    expect((await asPostgres("select pg_get_userbyid(datdba) from pg_database where datname = 'shop'")).stdout.trim()).toBe('shop');
    expect((await asPostgres("select string_agg(extname, ',' order by extname) from pg_extension")).stdout.trim()).toBe('pg_trgm,plpgsql,uuid-ossp');
    expect((await runKeel(['provision', 'itest', '--output', 'json'], { root })).json().changed).toBe(0);
  });

  it('a database dropped while its owner role stays is created again, owned by it, with its extensions', async () => {
    const asPostgres = (sql: string, db = 'postgres') => target.exec(['runuser', '-u', 'postgres', '--', 'psql', '-XtAc', sql, '-d', db]);
    expect((await asPostgres('DROP DATABASE shop WITH (FORCE)')).code).toBe(0);
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(r.code, r.stdout).toBe(0);
    expect(r.json().changed).toBe(2);
    expect((await psql(NEW_PASSWORD, "select current_user || ' ' || pg_get_userbyid(datdba) from pg_database where datname = 'shop'")).stdout.trim()).toBe(
      'shop shop',
    );
    expect((await asPostgres("select string_agg(extname, ',' order by extname) from pg_extension", 'shop')).stdout.trim()).toBe('pg_trgm,plpgsql,uuid-ossp');
    expect((await runKeel(['provision', 'itest', '--output', 'json'], { root })).json().changed).toBe(0);
  });

  it('a pg_hba rule the server rejects is not kept: the old file is restored (exit 2)', async () => {
    const before = (await target.exec(['cat', '/etc/postgresql/15/main/pg_hba.conf'])).stdout;
    // Valid for the schema, refused by PostgreSQL: clientcert is only for hostssl lines.
    const inv = join(root, 'inventories', 'itest.yaml');
    const good = readFileSync(inv, 'utf8');
    writeFileSync(inv, good.replace('method: scram-sha-256}', 'method: scram-sha-256, options: clientcert=verify-full}'));
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    writeFileSync(inv, good);
    expect(r.code, r.stdout).toBe(2);
    const failed = r.json().hosts[0].resources.find((x: any) => x.status === 'failed');
    expect(failed?.id).toContain('pg_hba.conf');
    expect((await target.exec(['cat', '/etc/postgresql/15/main/pg_hba.conf'])).stdout).toBe(before);
    expect((await psql(NEW_PASSWORD, 'select 1')).stdout.trim()).toBe('1');
    expect(failed.output).toMatch(/validation failed/);
  });
});
