// The precompiled validators (ajv's standalone code, made at build time) must answer exactly
// as ajv compiling the same schema at run time: same result, same errors (whose wording,
// paths and params keel turns into its messages). Checked for every schema keel ships, on
// values of every JSON type and on objects with each declared property set to each of them.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import { precompiledSource, shippedSchemas } from '../../src/validators/build.js';
import { FLAVORS } from '../../src/validators/flavors.js';
import { checkDeclaration, validator, validatorOf, type Precompiled } from '../../src/validators/index.js';

const SAMPLES: unknown[] = [null, true, false, 0, 7, -1, 1.5, 70000, '', 'x', 'a b', '0644', '/etc/x', [], ['a', 1], {}, { unknown: 1 }];

function samplesFor(schema: Record<string, unknown>): unknown[] {
  const out = [...SAMPLES];
  if (Array.isArray(schema.enum)) out.push(...schema.enum);
  const props = schema.properties as Record<string, unknown> | undefined;
  if (props) {
    for (const p of Object.keys(props)) for (const s of SAMPLES) out.push({ [p]: s });
    out.push(Object.fromEntries(Object.keys(props).map((p) => [p, 'x'])));
  }
  return out;
}

const requireCjs = createRequire(import.meta.url);
const generated = precompiledSource();
const file = { exports: {} as Precompiled };
new Function('module', 'exports', 'require', generated.source)(file, file.exports, requireCjs);
/** The validator the generated file holds for `text`, as index.ts compiles it. */
function precompiled(flavor: keyof Precompiled, text: string): ValidateFunction | undefined {
  const body = file.exports[flavor]?.[text];
  return body === undefined ? undefined : validatorOf(body);
}

describe('precompiled validators', () => {
  const { schemas, declarations } = shippedSchemas();
  for (const [flavor, list] of Object.entries(schemas) as [keyof typeof schemas, object[]][]) {
    it(`${flavor}: every shipped schema answers as ajv compiling it (${list.length} schemas)`, () => {
      const ajv = new Ajv(FLAVORS[flavor]);
      let checked = 0;
      for (const schema of list) {
        const text = JSON.stringify(schema);
        const pre = precompiled(flavor, text);
        expect(pre, `not precompiled: ${text.slice(0, 200)}`).toBeTypeOf('function');
        const compiled = ajv.compile(JSON.parse(text) as object);
        for (const value of samplesFor(schema as Record<string, unknown>)) {
          const a = pre!(value);
          const b = compiled(value);
          expect({ valid: a, errors: pre!.errors ?? null }, `${text.slice(0, 120)} on ${JSON.stringify(value)}`).toEqual({
            valid: b,
            errors: compiled.errors ?? null,
          });
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(list.length * SAMPLES.length - 1);
    });
  }

  it('takes a declaration whose value schema is precompiled as valid exactly when ajv does', () => {
    const ajv = new Ajv(FLAVORS.declarations);
    const cases = [
      ...declarations,
      { type: 'string', default: 5 },
      { type: 'string', description: 5 },
      { type: 'string', description: null },
      { type: 'string', description: 'x', default: { a: [1] } },
    ];
    for (const d of cases) {
      let ours: string | null = null;
      let theirs: string | null = null;
      try {
        checkDeclaration(d);
      } catch (err) {
        ours = (err as Error).message;
      }
      try {
        ajv.compile(d);
      } catch (err) {
        theirs = (err as Error).message;
      }
      expect(ours, JSON.stringify(d)).toBe(theirs);
    }
  });
});

describe('validator()', () => {
  it('compiles a schema nothing precompiled, once per JSON text', () => {
    const a = validator('values', { type: 'string', pattern: '^unshipped-[0-9]+$' });
    const b = validator('values', { type: 'string', pattern: '^unshipped-[0-9]+$' });
    expect(a).toBe(b);
    expect(a('unshipped-1')).toBe(true);
    expect(a('other')).toBe(false);
    expect(a.errors?.[0]).toMatchObject({ keyword: 'pattern', message: 'must match pattern "^unshipped-[0-9]+$"' });
  });

  it("refuses an invalid declaration with ajv's error, and accepts a valid one", () => {
    expect(() => checkDeclaration({ type: 'strng' })).toThrow(/schema is invalid/);
    expect(() => checkDeclaration({ type: 'string', minLength: 2, description: 'unshipped' })).not.toThrow();
  });
});
