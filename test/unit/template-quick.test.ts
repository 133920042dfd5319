// quickParse must give exactly Handlebars' AST, or null (then Handlebars parses): compared on
// every source of the built-in roles and on the edge cases where the two could part. The scan
// it is built from (scanPlain, what render uses) must give the same texts and paths, each path
// at Handlebars' line and column.
import { describe, expect, it } from 'vitest';
import { builtinTemplateSources } from '../../src/engine/template-build.js';
import { keelHandlebars } from '../../src/engine/template.js';
import { quickParse, scanPlain } from '../../src/engine/template-quick.js';

/** Handlebars' AST as data (its SourceLocation class and undefined members dropped). */
const plain = (ast: unknown) => JSON.parse(JSON.stringify(ast));

function handlebars(source: string): unknown {
  try {
    return plain(keelHandlebars.parse(source));
  } catch (err) {
    return `parse error: ${(err as Error).message}`;
  }
}

/** A plain template's texts and paths as Handlebars' parser sees them. */
function partsOf(source: string): { texts: string[]; paths: [string, number, number][] } {
  const texts = [''];
  const paths: [string, number, number][] = [];
  for (const st of keelHandlebars.parse(source).body) {
    if (st.type === 'ContentStatement') texts[texts.length - 1] += (st as hbs.AST.ContentStatement).value;
    else {
      const p = (st as hbs.AST.MustacheStatement).path as hbs.AST.PathExpression;
      paths.push([p.original, p.loc.start.line, p.loc.start.column]);
      texts.push('');
    }
  }
  return { texts, paths };
}

function scanned(source: string): ReturnType<typeof partsOf> | null {
  const s = scanPlain(source);
  return s && { texts: s.texts, paths: s.paths.map((p) => [p.original, p.line, p.column]) };
}

describe('quickParse', () => {
  it("gives Handlebars' own AST for every built-in source it takes, and takes most plain ones", () => {
    const sources = builtinTemplateSources().filter((s) => s.includes('{{'));
    let taken = 0;
    for (const s of sources) {
      const quick = quickParse(s);
      if (quick === null) continue;
      taken++;
      expect(plain(quick), s.slice(0, 200)).toEqual(handlebars(s));
      expect(scanned(s), s.slice(0, 200)).toEqual(partsOf(s));
    }
    expect(sources.length).toBeGreaterThan(100);
    expect(taken).toBeGreaterThan(sources.length / 3);
  });

  const same = [
    '{{a}}',
    'x{{a}}',
    '{{a}}y',
    '{{ a }}',
    '{{\ta.b_c.D9\t}}',
    'line 1\nline 2 {{app_user}} and {{ app.port }}\n\nlast {{x}}{{y}}\n',
    '# config\nserver_name {{name}};\nroot {{root}}/d000;\n',
    'é ü ✓ {{name}} 😀 {{other}}\n😀😀 {{third}}',
    '}} {{a}} }}',
    '{a} {{a}} {',
    '{{_private}}',
    '{{a}}\n',
  ];
  it.each(same)('same AST: %j', (s) => {
    const quick = quickParse(s);
    expect(quick).not.toBeNull();
    expect(plain(quick)).toEqual(handlebars(s));
    expect(scanned(s)).toEqual(partsOf(s));
  });

  const declined = [
    '{{{a}}}',
    '{{a}}}',
    '\\{{a}}',
    '\\\\{{a}}',
    '{{#if a}}x{{/if}}',
    '{{! comment }}',
    '{{!-- comment --}}',
    '{{> partial}}',
    '{{~a}}',
    '{{a~}}',
    '{{&a}}',
    '{{a b}}',
    '{{join a " "}}',
    '{{@index}}',
    '{{../a}}',
    '{{this}}',
    '{{this.a}}',
    '{{a/b}}',
    '{{true}}',
    '{{a.null}}',
    '{{else}}',
    '{{[a b]}}',
    '{{a-b}}',
    '{{1}}',
    '{{a.0}}',
    '{{\na\n}}',
    'x {{a}}\r\ny',
    'unclosed {{a',
    '{{}}',
    '{{ }}',
  ];
  it.each(declined)('left to Handlebars: %j', (s) => {
    expect(quickParse(s)).toBeNull();
    expect(scanPlain(s)).toBeNull();
  });
});
