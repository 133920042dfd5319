// Roles kept between runs (src/engine/role-store.ts) must be the roles a parse gives: the same
// Role and references for every built-in role, and a fresh parse as soon as a file the parse
// read changes (role.yaml, a template, the shared variables); a role with errors is never kept.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoleStore } from '../../src/engine/role-store.js';
import { builtinRolesDir, CodenameDefault, RoleLibrary } from '../../src/engine/roles.js';

let dir: string;
let cache: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-role-store-'));
  cache = join(dir, 'cache');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entries = () => (existsSync(cache) ? readdirSync(cache).filter((f) => f.endsWith('.json')) : []);

describe('the role store', () => {
  it('gives back every built-in role and its references as parsed', () => {
    const parsed = new RoleLibrary([builtinRolesDir()]);
    const first = new RoleLibrary([builtinRolesDir()], new RoleStore(cache, 'test'));
    for (const n of first.names()) first.get(n);
    // Every role and roles/vars.yaml, postgres's default_by_codename (a CodenameDefault) too.
    expect(entries().length).toBe(first.names().length + 1);
    const again = new RoleLibrary([builtinRolesDir()], new RoleStore(cache, 'test'));
    for (const n of parsed.names()) {
      expect(again.get(n), n).toEqual(parsed.get(n));
      expect(again.references(n), n).toEqual(parsed.references(n));
    }
    const version = again.get('postgres').defaults.postgres_version;
    expect(version).toBeInstanceOf(CodenameDefault);
    expect(version).toEqual(parsed.get('postgres').defaults.postgres_version);
    expect(again.shared()).toEqual(parsed.shared());
  });

  it('reads what it kept, and parses again when role.yaml, a template or the shared variables change', () => {
    const roles = join(dir, 'roles');
    mkdirSync(join(roles, 'r', 'templates'), { recursive: true });
    writeFileSync(join(roles, 'r', 'role.yaml'), 'description: one\nresources:\n  - template: {src: a.conf, dest: /etc/a.conf}\n');
    writeFileSync(join(roles, 'r', 'templates', 'a.conf'), '{{first}}\n');
    const lib = () => new RoleLibrary([roles], new RoleStore(cache, 'test'));
    expect(lib().references('r')).toEqual(new Set(['first']));
    // What is read is the entry: a (hand-edited) entry shows through while the files are the same.
    const [entry] = entries();
    writeFileSync(join(cache, entry!), readFileSync(join(cache, entry!), 'utf8').replace('"description":"one"', '"description":"kept"'));
    expect(lib().get('r').description).toBe('kept');

    writeFileSync(join(roles, 'r', 'templates', 'a.conf'), '{{second}}\n');
    expect(lib().references('r')).toEqual(new Set(['second']));
    writeFileSync(join(roles, 'r', 'role.yaml'), 'description: two\nresources:\n  - template: {src: a.conf, dest: /etc/a.conf}\n');
    expect(lib().get('r').description).toBe('two');
    expect(entries().length).toBe(1); // the role's older entries are gone

    // A shared variable it uses, then not declared any more: refused again, not read from the store.
    writeFileSync(join(roles, 'vars.yaml'), 'variables:\n  app_user: {type: string}\n');
    writeFileSync(join(roles, 'r', 'role.yaml'), 'uses: [app_user]\nresources: []\n');
    expect(lib().get('r').uses).toEqual(['app_user']);
    writeFileSync(join(roles, 'vars.yaml'), 'variables:\n  app_root: {type: string}\n');
    expect(() => lib().get('r')).toThrow(/uses: "app_user" is not a shared variable/);
  });

  it('keeps a shared default_by_codename as one: the same table, fallback and place when read back', () => {
    const roles = join(dir, 'roles');
    mkdirSync(join(roles, 'r'), { recursive: true });
    writeFileSync(
      join(roles, 'vars.yaml'),
      'variables:\n  v: {type: integer, default: 3, default_by_codename: {bookworm: 15}}\n  w: {type: string, default: x}\n',
    );
    writeFileSync(join(roles, 'r', 'role.yaml'), 'uses: [v, w]\nresources: []\n');
    const parsed = new RoleLibrary([roles]).shared();
    new RoleLibrary([roles], new RoleStore(cache, 'test')).get('r');
    expect(entries().length).toBe(2);
    const kept = new RoleLibrary([roles], new RoleStore(cache, 'test')).shared();
    expect(kept.defaults.v).toBeInstanceOf(CodenameDefault);
    expect(kept.defaults.v).toEqual(parsed.defaults.v);
    expect((kept.defaults.v as CodenameDefault).fallback).toEqual({ value: 3 });
    expect(kept.defaults.w).toBe('x');
  });
  it('keeps no role with errors, and none whose values JSON would not give back', () => {
    const roles = join(dir, 'roles');
    mkdirSync(join(roles, 'bad'), { recursive: true });
    mkdirSync(join(roles, 'inf'), { recursive: true });
    writeFileSync(join(roles, 'bad', 'role.yaml'), 'resources:\n  - nosuchtype: {}\n');
    writeFileSync(join(roles, 'inf', 'role.yaml'), 'variables:\n  x: {type: number, default: .inf}\nresources: []\n');
    const lib = () => new RoleLibrary([roles], new RoleStore(cache, 'test'));
    for (let i = 0; i < 2; i++) {
      expect(() => lib().get('bad')).toThrow(/unknown resource type or key "nosuchtype"/);
      expect(lib().get('inf').defaults.x).toBe(Infinity);
    }
    expect(entries()).toEqual([]);
  });

  it('is off for keel run from its sources (no build id)', () => {
    expect(RoleStore.forProject(dir)).toBeUndefined();
  });
});
