import { describe, expect, it } from 'vitest';
import { ByteBuffer } from '../../src/ssh/byte-buffer.js';

describe('ByteBuffer', () => {
  it('holds what was appended, in order, across growth and consumption', () => {
    const b = new ByteBuffer(8);
    let expected = '';
    for (let i = 0; i < 500; i++) {
      const chunk = `line ${i} ${'x'.repeat(i % 37)}\n`;
      b.append(Buffer.from(chunk));
      expected += chunk;
      if (i % 7 === 0) {
        const n = Math.floor(expected.length / 3);
        b.consume(n);
        expected = expected.slice(n);
      }
      expect(b.length).toBe(expected.length);
    }
    expect(b.view().toString()).toBe(expected);
  });

  it('a view taken before a consume keeps its bytes until the next append', () => {
    const b = new ByteBuffer(8);
    b.append(Buffer.from('abcdef'));
    const v = b.view();
    b.consume(3);
    expect(v.toString()).toBe('abcdef');
    expect(b.view().toString()).toBe('def');
  });

  it('consuming everything empties it; so does clear', () => {
    const b = new ByteBuffer(4);
    b.append(Buffer.alloc(1000, 0x61));
    b.consume(1000);
    expect(b.length).toBe(0);
    b.append(Buffer.from('z'));
    expect(b.view().toString()).toBe('z');
    b.clear();
    expect(b.view().length).toBe(0);
    b.consume(5);
    expect(b.length).toBe(0);
  });
});
