// same(): the deep equality plan sharing and compile reuse rely on to never take one value for
// another.
import { describe, expect, it } from 'vitest';
import { same } from '../../src/engine/same.js';

describe('same', () => {
  const type = { name: 'file' };
  it.each([
    ['equal plain objects, any member order', { a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 }],
    ['NaN is NaN', { n: NaN }, { n: NaN }],
    ['the same object of another kind', { t: type }, { t: type }],
    ['Maps with the same entries', new Map([['a', [1]]]), new Map([['a', [1]]])],
    ['Sets with the same values', new Set(['a', 'b']), new Set(['a', 'b'])],
    ['a null prototype and a plain one alike', Object.assign(Object.create(null), { a: 1 }), Object.assign(Object.create(null), { a: 1 })],
  ])('same: %s', (_, a, b) => expect(same(a, b)).toBe(true));

  it.each([
    ['undefined member and missing member', { a: undefined }, {}],
    ['0 and -0', { n: 0 }, { n: -0 }],
    ['null and undefined', { a: null }, { a: undefined }],
    ['1 and "1"', [1], ['1']],
    ['an array and an object with its indexes', [1], { 0: 1 }],
    [
      'Maps in another order',
      new Map([
        ['a', 1],
        ['b', 2],
      ]),
      new Map([
        ['b', 2],
        ['a', 1],
      ]),
    ],
    ['a Map and a Set', new Map([['a', 'a']]), new Set([['a', 'a']])],
    ['equal Buffers that are two objects', Buffer.from('x'), Buffer.from('x')],
    ['equal Dates that are two objects', { d: new Date(0) }, { d: new Date(0) }],
    ['the same members, another function', { f: () => 1 }, { f: () => 1 }],
    ['one more element', [1, 2], [1, 2, 3]],
    ['a difference deep inside', { a: { b: { c: [1, 2, { d: 'x' }] } } }, { a: { b: { c: [1, 2, { d: 'y' }] } } }],
  ])('not same: %s', (_, a, b) => {
    expect(same(a, b)).toBe(false);
    expect(same(b, a)).toBe(false);
  });
});
