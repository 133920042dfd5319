// The built-in roles' templates are precompiled when keel is built (template-build.ts); a
// precompiled template must render exactly what Handlebars compiling the source renders, and
// fail with the same error. Checked for every source the build precompiles, with keel's
// helpers, on contexts that set every name the source reads to values of several kinds.
import { describe, expect, it, vi } from 'vitest';
import { builtinTemplateSources, precompiledTemplatesSource } from '../../src/engine/template-build.js';
import type { PrecompiledTemplates } from '../../src/engine/template-precompiled.js';
import { keelHandlebars, namesToCheck, precompileSource, referencedNames, render, sourceKey } from '../../src/engine/template.js';

const generated = precompiledTemplatesSource();
const file = { exports: {} as PrecompiledTemplates };
new Function('module', 'exports', generated.source)(file, file.exports);
const specs = file.exports;
const spec = (key: string) => specs[key]!.spec();

/** Every name the source reads, as `value`. */
const context = (source: string, value: unknown): object => Object.fromEntries(referencedNames(source).map((n) => [n, value]));

function outcome(f: () => string): string {
  try {
    return `ok: ${f()}`;
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

describe('precompiled templates', () => {
  const sources = builtinTemplateSources().filter((s) => precompileSource(s) !== null);

  it('cover every built-in template Handlebars would compile', () => {
    expect(sources.length).toBeGreaterThan(50);
    expect(Object.keys(specs).sort()).toEqual([...new Set(sources.map(sourceKey))].sort());
  });

  it('render what compiling renders, errors included', () => {
    const hb = keelHandlebars;
    let rendered = 0;
    for (const value of ['v', 0, 3, true, false, ['a', 'b'], { name: 'n', port: 80 }, '']) {
      for (const s of sources) {
        const ctx = context(s, value);
        const pre = outcome(() => hb.template(spec(sourceKey(s)))(ctx));
        const comp = outcome(() => hb.compile(s, { strict: true, noEscape: true })(ctx));
        expect(pre, s.slice(0, 200)).toBe(comp);
        if (pre.startsWith('ok: ') && pre.length > 10) rendered++;
      }
    }
    expect(rendered).toBeGreaterThan(sources.length); // not only errors
  });

  it("carry the checks and names Handlebars' AST gives, so that render never parses them", () => {
    for (const s of sources) {
      const ast = keelHandlebars.parse(s);
      expect(specs[sourceKey(s)]!.checks, s.slice(0, 200)).toEqual(namesToCheck(ast));
      expect(specs[sourceKey(s)]!.names, s.slice(0, 200)).toEqual(referencedNames(s));
    }
    const parse = vi.spyOn(keelHandlebars, 'parse');
    try {
      // A built-in template (nginx's site) rendered the way compile does: checked, not parsed.
      const site = sources.find((s) => s.includes('server_name'))!;
      const [missing] = namesToCheck(keelHandlebars.parse(site));
      parse.mockClear();
      expect(() => render(site, {}, { file: 'roles/nginx/templates/site.conf', line: 1 })).toThrow(`variable "${missing![0]}" is not defined`);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });
});
