// A host whose inputs answer every read of an earlier host's resource section the same way
// takes that section (src/engine/compile-reuse.ts); any host's plan is what compiling it alone
// gives, reused or not.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileHost, roleInstancesOf, type CompileOptions } from '../../src/engine/compile.js';
import { SectionCache, overlay } from '../../src/engine/compile-reuse.js';
import { compileForAnyPlatform } from '../../src/engine/variants.js';
import { RoleLibrary } from '../../src/engine/roles.js';
import type { FactName } from '../../src/engine/facts.js';
import type { Host } from '../../src/inventory/types.js';
import { localConnection } from '../helpers/local-session.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-compile-reuse-'));
  mkdirSync(join(dir, 'roles', 'web', 'templates'), { recursive: true });
  writeFileSync(
    join(dir, 'roles', 'web', 'role.yaml'),
    [
      'resources:',
      '  - file: {path: /etc/motd, content: "{{motd}}\\n"}',
      '  - template: {src: site.conf, dest: /etc/site.conf}',
      '    notify: reload',
      '  - template: {src: local.conf, dest: /etc/local.conf, vars: {x: "{{motd}}-local"}}',
      '  - directory: {path: "/home/{{item}}"}',
      '    loop: "{{users}}"',
      '  - file: {path: /etc/dyn, content: "{{lookup @root pick}}\\n"}',
      '  - package: {name: "{{pkg}}"}',
      'handlers:',
      '  reload: {run: "echo {{quote motd}}"}',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'roles', 'web', 'templates', 'site.conf'), '{{#if named}}server_name {{inventory_hostname}} {{alias}};{{/if}}\n');
  writeFileSync(join(dir, 'roles', 'web', 'templates', 'local.conf'), 'x={{x}} motd={{motd}}\n');
  mkdirSync(join(dir, 'roles', 'db'), { recursive: true });
  writeFileSync(
    join(dir, 'roles', 'db', 'role.yaml'),
    [
      'variables:',
      '  db_version: {type: integer, default_by_codename: {bookworm: 15, trixie: 17}}',
      'resources:',
      '  - file: {path: /etc/db, content: "{{db_version}}\\n"}',
      '',
    ].join('\n'),
  );
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const BASE = { motd: 'hi', named: false, users: ['a', 'b'], pick: 'motd', pkg: 'curl', unused: '1', alias: 'www' };

const host = (name: string, vars: Record<string, unknown>, roles = ['web'], varLine = 1): Host => ({
  name,
  groups: ['all'],
  roles,
  vars,
  varLocations: Object.fromEntries(Object.keys(vars).map((k) => [k, { file: 'inventories/t.yaml', line: varLine }])),
  location: { file: 'inventories/t.yaml', line: 1 },
  connection: localConnection(),
});

describe('compile reuse', () => {
  it('a host whose inputs answer the same reads takes the earlier section; any other compiles its own, and every plan is its own compile', () => {
    const lib = new RoleLibrary([join(dir, 'roles')]);
    const opts: CompileOptions = { env: 't', root: dir };
    const hosts = {
      h1: host('h1', BASE),
      unusedDiffers: host('h2', { ...BASE, unused: '2' }),
      motdDiffers: host('h3', { ...BASE, motd: 'other' }),
      namesHost: host('h4', { ...BASE, named: true }),
      looksUpUnused: host('h5', { ...BASE, pick: 'unused' }),
      looksUpOtherUnused: host('h6', { ...BASE, pick: 'unused', unused: '2' }),
      looksUpSameUnused: host('h7', { ...BASE, pick: 'unused', extra_unused: 'z' }),
      moreUsers: host('h8', { ...BASE, users: ['a', 'b', 'c'] }),
      pkgSetElsewhere: host('h9', BASE, ['web'], 7),
      missingVar: host('h10', { ...BASE, unused: undefined }),
    };
    const sections = new SectionCache(Object.values(hosts).map(roleInstancesOf));
    const plans = Object.fromEntries(Object.entries(hosts).map(([k, h]) => [k, compileHost(h, lib, { ...opts, sections })]));
    const alone = Object.fromEntries(Object.entries(hosts).map(([k, h]) => [k, compileHost(h, lib, opts)]));

    expect(plans.unusedDiffers!.resources).toBe(plans.h1!.resources);
    expect(plans.unusedDiffers!.handlers).toBe(plans.h1!.handlers);
    expect(plans.missingVar!.resources).toBe(plans.h1!.resources);
    expect(plans.looksUpSameUnused!.resources).toBe(plans.looksUpUnused!.resources);
    for (const k of ['motdDiffers', 'namesHost', 'looksUpUnused', 'moreUsers', 'pkgSetElsewhere'] as const) {
      expect(plans[k]!.resources, k).not.toBe(plans.h1!.resources);
    }
    expect(plans.looksUpOtherUnused!.resources).not.toBe(plans.looksUpUnused!.resources);

    // Reused or not, each plan is the one compiling that host alone gives.
    for (const k of Object.keys(hosts)) {
      expect(plans[k]!.host.name).toBe(alone[k]!.host.name);
      expect(plans[k], k).toEqual(alone[k]);
    }
    // The values that tell them apart are there.
    const content = (k: string, path: string) => plans[k]!.resources.find((r) => r.params.path === path)!.params.content;
    expect(content('namesHost', '/etc/site.conf')).toBe('server_name h4 www;\n');
    // A name only checked (in a branch not taken) still has to be there: that host fails as
    // it does alone, and does not take h1's section.
    const { alias: _, ...noAlias } = BASE;
    expect(() => compileHost(host('h11', noAlias), lib, { ...opts, sections })).toThrow(/variable "alias" is not defined/);
    expect(() => compileHost(host('h11', noAlias), lib, opts)).toThrow(/variable "alias" is not defined/);
    expect(content('looksUpOtherUnused', '/etc/dyn')).toBe('2\n');
    expect(content('motdDiffers', '/etc/local.conf')).toBe('x=other-local motd=other\n');
    expect(plans.moreUsers!.resources.filter((r) => r.typeName === 'directory')).toHaveLength(3);
    const origins = (k: string) => plans[k]!.resources.find((r) => r.typeName === 'package')!.origins;
    expect(origins('pkgSetElsewhere')).toEqual([{ name: 'pkg', value: 'curl', from: 'inventories/t.yaml:7' }]);
  });

  it('a host that reuses a section read facts through it records them, so its plan has the same variants', () => {
    const lib = new RoleLibrary([join(dir, 'roles')]);
    const sections = new SectionCache([['a'], ['b'], ['c']].map(() => [{ role: 'db' }]));
    const opts: CompileOptions = { env: 't', root: dir };
    const a = compileForAnyPlatform(host('a', {}, ['db']), lib, { ...opts, sections });
    const b = compileForAnyPlatform(host('b', {}, ['db']), lib, { ...opts, sections });
    const alone = compileForAnyPlatform(host('b', {}, ['db']), lib, opts);
    expect(b.resources).toBe(a.resources);
    expect(b.byFacts?.variants.length).toBeGreaterThan(1);
    expect(b.byFacts?.variants.map((v) => v.plan.resources[0]!.params.content)).toEqual(
      alone.byFacts?.variants.map((v) => v.plan.resources[0]!.params.content),
    );
    const read = new Set<FactName>();
    compileHost(host('c', {}, ['db']), lib, { ...opts, sections, factsRead: read });
    expect([...read]).toContain('codename');
  });

  it('a run where no other host applies the same roles records nothing: nothing is reused', () => {
    const lib = new RoleLibrary([join(dir, 'roles')]);
    const opts: CompileOptions = { env: 't', root: dir };
    // The run's hosts: one web, one db. Compiling a second web host (as a variant would) finds nothing kept.
    const sections = new SectionCache([[{ role: 'web' }], [{ role: 'db' }]]);
    const first = compileHost(host('h1', BASE), lib, { ...opts, sections });
    const second = compileHost(host('h2', BASE), lib, { ...opts, sections });
    expect(second.resources).not.toBe(first.resources);
    expect(second).toEqual(compileHost(host('h2', BASE), lib, opts));
  });

  it('overlay answers as the spread {...base, ...top} does', () => {
    const sym = Symbol('s');
    const base = { a: 1, b: 2, [sym]: 'x' };
    const o = overlay(base, { b: 3, item: 'i' });
    const spread = { ...base, b: 3, item: 'i' };
    for (const k of ['a', 'b', 'item', 'missing', 'toString', sym]) {
      expect(k in o, String(k)).toBe(k in spread);
      expect((o as Record<PropertyKey, unknown>)[k], String(k)).toBe((spread as Record<PropertyKey, unknown>)[k]);
      expect(Object.prototype.hasOwnProperty.call(o, k), String(k)).toBe(Object.prototype.hasOwnProperty.call(spread, k));
    }
    expect({ ...o }).toEqual(spread);
  });
});
