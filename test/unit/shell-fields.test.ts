// Roles cannot inject: a bare {{var}} in a shell field is refused at compile time unless the
// variable's schema admits only characters that need no quoting (src/engine/shell-fields.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoleLibrary, builtinRolesDir } from '../../src/engine/roles.js';
import { safePattern, safeSchema } from '../../src/engine/shell-fields.js';
import { ConfigErrors } from '../../src/errors.js';

describe('which schemas are safe bare in shell', () => {
  it('anchored patterns of plain characters are; anything that admits a shell character is not', () => {
    for (const p of ['^[A-Za-z0-9_.-]+$', '^[a-z_][a-z0-9_-]{0,31}$', '^[0-9]+(\\.[0-9]+)*$', '^(?:dev|prod)$', '^\\d+[kMG]?$', '^[\\w.]+$'])
      expect(safePattern(p), p).toBe(true);
    for (const p of [
      '^/[^\\n]*$',
      '[a-z]+',
      '^[a-z]+',
      '^.*$',
      '^[a-z ]+$',
      '^[A-Za-z0-9*]+$',
      '^\\S+$',
      '^[a-z]+\\$',
      '^(?=x)[a-z]$',
      '^[!-~]+$',
      "^[a-z']+$",
      '^[a-z]+|[a-z]+$',
    ])
      expect(safePattern(p), p).toBe(false);
  });
  it('integers, booleans and enums of plain words are safe; free strings are not', () => {
    expect(safeSchema({ type: 'integer' })).toBe(true);
    expect(safeSchema({ type: ['integer', 'null'] })).toBe(true);
    expect(safeSchema({ type: 'boolean' })).toBe(true);
    expect(safeSchema({ enum: ['systemd', 'supervisor'] })).toBe(true);
    expect(safeSchema({ enum: ['a b'] })).toBe(false);
    expect(safeSchema({ type: 'string' })).toBe(false);
    expect(safeSchema({ type: 'array', items: { type: 'integer' } })).toBe(false);
  });
});

describe('a role with a bare value in a shell field', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-shellf-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function role(yaml: string): () => unknown {
    mkdirSync(join(dir, 'r'), { recursive: true });
    writeFileSync(join(dir, 'r', 'role.yaml'), yaml);
    return () => new RoleLibrary([dir]).get('r');
  }
  function messages(load: () => unknown): string[] {
    try {
      load();
    } catch (err) {
      return err instanceof ConfigErrors ? err.errors.map((e) => e.message) : [(err as Error).message];
    }
    return [];
  }

  it('is refused with the file, line, column and the fix', () => {
    const load = role(
      [
        'variables:',
        '  dest: {type: string, default: /srv}',
        '  unit: {type: string, pattern: "^[a-z0-9-]+$", default: web}',
        '  port: {type: integer, default: 80}',
        'resources:',
        '  - command: {run: "cp x {{dest}}", unless: "test -e {{quote dest}}/x"}',
        '  - command: {run: "systemctl restart {{unit}}; echo {{port}}", only_if: "echo {{join dest}}"}',
        '  - file: {path: /etc/x, content: "", validate: "check {{secrets.token}} %s"}',
        'handlers:',
        '  again: {run: "touch {{dest}}"}',
        '  svc: {service: {name: "{{dest}}"}}',
      ].join('\n'),
    );
    const m = messages(load);
    expect(m).toHaveLength(5);
    expect(m[0]).toMatch(/r\/role\.yaml:6:\d+: command run: \{\{dest\}\} is rendered into shell unquoted .*write \{\{quote dest\}\}/);
    expect(m[1]).toMatch(/role\.yaml:7:\d+: command only_if: \{\{join …\}\} .*helper "join"/);
    expect(m[2]).toMatch(/role\.yaml:8:\d+: file validate: \{\{secrets\.token\}\} .*process list/);
    expect(m[3]).toMatch(/role\.yaml:10:\d+: handler "again" run: \{\{dest\}\}/);
    expect(m[4]).toMatch(/role\.yaml:11:\d+: handler "svc" service name: \{\{dest\}\}/);
  });

  it('takes a loop item and an each block from the list schema', () => {
    expect(
      messages(
        role(
          [
            'variables:',
            '  exts: {type: array, items: {type: string, pattern: "^[a-z_]+$"}, default: []}',
            '  env: {type: object, propertyNames: {pattern: "^[A-Z_]+$"}, additionalProperties: {type: string}, default: {}}',
            'resources:',
            '  - command: {run: "make {{item}}", creates: "/x/{{item}}"}',
            '    loop: "{{exts}}"',
            '  - command: {run: "{{#each env}}export {{@key}}={{quote this}}\\n{{/each}}true", creates: /y}',
          ].join('\n'),
        ),
      ),
    ).toEqual([]);
    expect(
      messages(
        role(
          [
            'variables:',
            '  env: {type: object, additionalProperties: {type: string}, default: {}}',
            'resources:',
            '  - command: {run: "{{#each env}}export {{@key}}={{this}}\\n{{/each}}true", creates: /y}',
          ].join('\n'),
        ),
      ),
    ).toHaveLength(2);
  });

  it('every built-in role passes', () => {
    const lib = new RoleLibrary([builtinRolesDir()]);
    for (const name of lib.names()) expect(() => lib.get(name), name).not.toThrow();
  });
});
