// What keel masks: every vault value, wherever it is printed, as a whole value. A short secret
// is masked where it stands alone, not inside ordinary words; a long one anywhere, and by its
// prefix where keel cut a line in the middle of it.
import { describe, expect, it } from 'vitest';
import { MASK, Redactor } from '../../src/report/redact.js';

describe('Redactor', () => {
  it('masks a short secret as a whole value, not the same letters inside a word (issue 26.13)', () => {
    const r = new Redactor().add([{ db_password: 'pass' }]);
    expect(r.mask('FATAL:  password authentication failed for user "app"')).toBe('FATAL:  password authentication failed for user "app"');
    expect(r.mask('postgresql://app:pass@db1/app')).toBe(`postgresql://app:${MASK}@db1/app`);
    expect(r.mask("PGPASSWORD='pass' psql")).toBe(`PGPASSWORD='${MASK}' psql`);
    expect(r.mask('pass')).toBe(MASK);
    expect(r.mask('passé passer bypass')).toBe('passé passer bypass');
  });
  it('masks a long secret anywhere, even inside other text', () => {
    const r = new Redactor().add(['Dep-loy_s3cret-9x']);
    expect(r.mask('xxDep-loy_s3cret-9xyy')).toBe(`xx${MASK}yy`);
    expect(r.leaks('a Dep-loy_s3cret-9x b')).toBe(true);
  });
  it("masks what is left of a long secret where keel cut the line (a command's id is its first 57 characters)", () => {
    const r = new Redactor().add(['Dep-loy_s3cret-9x']);
    expect(r.mask('app/command:curl -u app:Dep-loy_s3c...')).toBe(`app/command:curl -u app:${MASK}...`);
    expect(r.mask('curl -u app:Dep-loy…')).toBe(`curl -u app:${MASK}…`);
    // Not the prefix alone, uncut: "Dep-" is ordinary text.
    expect(r.mask('Dep-loy_ is a word here')).toBe('Dep-loy_ is a word here');
  });
  it('masks the longer of two overlapping secrets whole', () => {
    const r = new Redactor().add(['abcdefghijk', 'abcdefghijk-and-more']);
    expect(r.mask('x abcdefghijk-and-more y')).toBe(`x ${MASK} y`);
  });

  it('masks secrets at any depth of a value, leaves the value itself as it was, and copies only what it masks', () => {
    const r = new Redactor().add(['s3cret-token-value']);
    const clean = { id: 'x', tags: ['a', 'b'], nested: { n: 1, ok: true, none: null } };
    const value = { event: 'resource', list: ['plain', 'with s3cret-token-value inside'], deep: { a: { b: 's3cret-token-value' } }, clean };
    const before = structuredClone(value);
    const masked = r.maskValue(value);
    expect(masked).toEqual({ event: 'resource', list: ['plain', `with ${MASK} inside`], deep: { a: { b: MASK } }, clean });
    expect(value).toEqual(before);
    expect(masked.clean).toBe(clean);
    expect(r.maskValue(clean)).toBe(clean);
    expect(new Redactor().maskValue(value)).toBe(value); // no secrets: nothing to copy
  });
});
