// Plain templates (text and {{path}} only) are rendered without Handlebars' compiler; their
// output must be exactly what Handlebars gives, which these tests check against Handlebars
// itself, and errors must be the same ConfigErrors.
import { describe, expect, it } from 'vitest';
import Handlebars from 'handlebars';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { render } from '../../src/engine/template.js';
import { ConfigError } from '../../src/errors.js';

const where = { file: 'roles/x/templates/t.hbs', line: 1 };
const handlebars = (source: string, context: object) => Handlebars.create().compile(source, { strict: true, noEscape: true })(context);

const context = {
  name: 'catalogage',
  port: 8000,
  zero: 0,
  off: false,
  on: true,
  none: null,
  empty: '',
  list: ['a', 'b'],
  nested: { db: { host: 'db1', port: 5432 }, 'weird key': 'w' },
  html: '<b>&"\'</b>',
  multi: 'line1\nline2',
};

const plain = [
  'server_name {{name}};\nlisten {{port}};\n',
  '{{zero}} {{off}} {{on}} [{{none}}] [{{empty}}] {{list}}',
  '{{nested.db.host}}:{{nested.db.port}} {{nested.[weird key]}} {{list.[0]}} {{list.length}}',
  '{{html}} {{{html}}} {{& html}}',
  '{{! a comment }}a{{!-- another {{x}} --}}b',
  '  {{~name~}}  \n  x {{~ port}}',
  'escaped \\{{name}} and {{name}}',
  '{{multi}}\n',
  'a\r\n{{name}}\r\n',
];

describe('plain templates render exactly as Handlebars does', () => {
  for (const source of plain) {
    it(JSON.stringify(source), () => {
      expect(render(source, context, where)).toBe(handlebars(source, context));
    });
  }

  it('a name used many times is looked up once, and printed each time', () => {
    let gets = 0;
    const counted = new Proxy({ port: 8000, host: { name: 'web1', none: null } } as Record<string, unknown>, {
      get: (t, k) => (typeof k === 'string' && gets++, Reflect.get(t, k)),
    });
    const source = 'a {{port}} {{host.name}}:{{port}} [{{host.none}}] {{host.name}} {{port}}\n'.repeat(20);
    expect(render(source, counted, where)).toBe(handlebars(source, { port: 8000, host: { name: 'web1', none: null } }));
    expect(gets).toBeLessThan(10);
  });

  it('templates with blocks and helpers still go through Handlebars', () => {
    const source = '{{#if on}}{{join list ","}}{{/if}}{{#each list}}[{{this}}@{{@index}}]{{/each}}{{quote name}}';
    expect(render(source, context, where)).toBe("a,b[a@0][b@1]'catalogage'");
  });

  it('every template of the built-in roles renders the same with a context that has all its names', () => {
    // Built-in templates that are plain go through the fast path: compare with Handlebars on a
    // context where every looked-up name resolves.
    const roles = resolve(import.meta.dirname, '..', '..', 'roles');
    let compared = 0;
    for (const role of readdirSync(roles)) {
      const dir = join(roles, role, 'templates');
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        const source = readFileSync(join(dir, f), 'utf8');
        const names = [...source.matchAll(/\{\{\s*([A-Za-z_][\w.]*)\s*\}\}/g)].map((m) => m[1]!);
        if (/\{\{[#/^>@]|\{\{\s*\w+\s+[\w"(]/.test(source)) continue; // blocks/helpers: Handlebars renders them
        const ctx: Record<string, unknown> = {};
        for (const n of names) {
          const parts = n.split('.');
          let cur = ctx;
          parts.forEach((p, i) => {
            if (i === parts.length - 1) cur[p] = `v-${n}`;
            else cur = (cur[p] ??= {}) as Record<string, unknown>;
          });
        }
        expect(render(source, ctx, where), `${role}/${f}`).toBe(handlebars(source, ctx));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(0);
  });
});

describe('plain template errors', () => {
  it('a missing variable names the file, line and column', () => {
    try {
      render('a\nb {{nope}}', {}, where);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain('variable "nope" is not defined');
      expect((err as ConfigError).location).toMatchObject({ file: where.file, line: 2, column: 5 });
    }
  });

  it('a missing nested key is an error, not an empty string', () => {
    expect(() => render('{{nested.db.user}}', context, where)).toThrow(/variable "nested.db.user" is not defined/);
  });

  it('a path through a value that is not a mapping is an error', () => {
    expect(() => render('{{name.first}}', context, where)).toThrow(ConfigError);
  });

  it('inherited properties are not looked up (as in Handlebars)', () => {
    const source = 'x{{nested.toString}}y';
    expect(() => handlebars(source, context)).not.toThrow();
    expect(render(source, context, where)).toBe(handlebars(source, context));
  });
});
