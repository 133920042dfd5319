// --output json is written in pieces (src/report/json-stream.ts); what it writes must be
// JSON.stringify(redactor.maskValue(value), null, 2) + '\n' to the byte, whatever the value
// and the piece size.
import { describe, expect, it } from 'vitest';
import { writeJson } from '../../src/report/json-stream.js';
import { Redactor } from '../../src/report/redact.js';

// One result several hosts share, and the same object at another indent.
const shared = { id: 'a/file:/etc/x', status: 'ok', reason: 'hunter2 is set\nsecond line' };
const values: unknown[] = [
  { hosts: [{ resources: [shared, shared] }, { resources: [shared, { ...shared }] }], top: shared, list: [[shared]] },
  null,
  0,
  -1.5,
  'text',
  [],
  {},
  [[], {}, [[]]],
  { a: undefined, b: () => 1, c: Symbol('s'), d: null, e: [undefined, () => 1, 2] },
  { 'key "quoted"\n': 'line1\nline2 "x" \\ é 日本 \u0000 \u2028', n: 3, t: true, f: false },
  { date: new Date(0), nested: { toJSON: () => ({ made: 'by toJSON' }) } },
  {
    env: 'prod',
    hosts: [
      { name: 'web1', resources: [{ id: 'a/file:/etc/x', status: 'ok', reason: 'password hunter2 is set', diff: undefined }], notes: [] },
      { name: 'web2', error: null, resources: [] },
    ],
  },
];

describe('writeJson', () => {
  it('writes what JSON.stringify(masked value, null, 2) writes, in pieces of any size', () => {
    const redactor = new Redactor();
    redactor.add(['hunter2']);
    for (const v of values) {
      const expected = JSON.stringify(redactor.maskValue(v), null, 2) + '\n';
      for (const chunk of [1, 7, 64 * 1024]) {
        for (const depth of [0, 1, 3, 10]) {
          const pieces: string[] = [];
          writeJson(
            v,
            (t) => pieces.push(t),
            (x) => redactor.maskValue(x),
            depth,
            chunk,
          );
          expect(pieces.join(''), `${JSON.stringify(v)} depth ${depth} chunk ${chunk}`).toBe(expected);
        }
      }
    }
  });

  it("makes a shared result's text at most twice, however many hosts share it", () => {
    const report = { hosts: Array.from({ length: 10 }, (_, i) => ({ name: `h${i}`, resources: [shared, { id: `own${i}` }] })) };
    let masked = 0;
    const pieces: string[] = [];
    writeJson(
      report,
      (t) => pieces.push(t),
      (x) => {
        if (x === shared) masked++;
        return x;
      },
      4,
    );
    expect(pieces.join('')).toBe(JSON.stringify(report, null, 2) + '\n');
    expect(masked).toBe(2);
  });

  it('writes a large report in pieces, not at once', () => {
    const report = {
      hosts: Array.from({ length: 200 }, (_, i) => ({ name: `h${i}`, resources: Array.from({ length: 50 }, (_, j) => ({ id: `r${j}`, status: 'ok' })) })),
    };
    const pieces: string[] = [];
    writeJson(report, (t) => pieces.push(t));
    expect(pieces.length).toBeGreaterThan(10);
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThan(70 * 1024);
    expect(pieces.join('')).toBe(JSON.stringify(report, null, 2) + '\n');
  });
});
