// -e: literal strings, typed values only from a file, errors that name -e.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readExtraVars } from '../../src/inventory/extra-vars.js';
import { ConfigError } from '../../src/errors.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'keel-e-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('-e', () => {
  it('key=value is always a string, whatever it looks like', () => {
    const v = readExtraVars(['rev=2', 'num=007', 'flag=true', 'j={"a":1}', 't={{secrets.x}}', 'empty='], dir);
    expect(v.values).toEqual({ rev: '2', num: '007', flag: 'true', j: '{"a":1}', t: '{{secrets.x}}', empty: '' });
    expect(v.locations.rev).toEqual({ file: '-e rev=...' });
  });

  it('@file.yaml gives typed values with their file:line:column', () => {
    writeFileSync(join(dir, 'v.yaml'), 'workers: 3\nhosts: [a, b]\ndebug: false\n');
    const v = readExtraVars(['@v.yaml'], dir);
    expect(v.values).toEqual({ workers: 3, hosts: ['a', 'b'], debug: false });
    expect(v.locations.hosts).toEqual({ file: 'v.yaml', line: 2, column: 1 });
  });

  it('refuses what is neither, naming it', () => {
    expect(() => readExtraVars(['{"a":1}'], dir)).toThrow(/-e expects key=value or @file.yaml, got "\{"a":1\}"/);
    expect(() => readExtraVars(['1x=2'], dir)).toThrow(ConfigError);
    expect(() => readExtraVars(['@missing.yaml'], dir)).toThrow(/-e @missing.yaml: cannot read the file \(ENOENT\)/);
    writeFileSync(join(dir, 'list.yaml'), '- a\n');
    expect(() => readExtraVars(['@list.yaml'], dir)).toThrow(/expected a mapping/);
  });
});
