import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { quote, sh, raw } from '../../src/shell/quote.js';

const NASTY = [
  '',
  'plain',
  "it's",
  '"double"',
  'a b\tc',
  'line1\nline2\n',
  '$(touch /tmp/keel-pwned)',
  '`id`',
  '$HOME ${PATH}',
  '\\backslash\\',
  "'; rm -rf / #",
  'émoji 🚀 ünïcödé',
  '-n',
  '*',
  '~root',
];

function echoThroughSh(word: string): string {
  const r = spawnSync('/bin/sh', ['-c', `printf '%s' ${word}`], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout;
}

describe('quote', () => {
  it('passes every value through a real sh unchanged, as one word', () => {
    for (const v of NASTY) {
      expect(echoThroughSh(quote(v))).toBe(v);
      const r = spawnSync('/bin/sh', ['-c', `set -- ${quote(v)}; echo $#`], { encoding: 'utf8' });
      expect(r.stdout.trim()).toBe('1');
    }
  });
  it('leaves safe words bare and refuses NUL', () => {
    expect(quote('/etc/nginx/nginx.conf')).toBe('/etc/nginx/nginx.conf');
    expect(quote(22)).toBe('22');
    expect(() => quote('a\0b')).toThrow(TypeError);
  });
  it('sh`` quotes every interpolated value, arrays as several words, raw() as is', () => {
    const cmd = sh`printf '%s|' ${NASTY} ${raw('"$((1+1))"')}`;
    const r = spawnSync('/bin/sh', ['-c', cmd.text], { encoding: 'utf8' });
    expect(r.stdout).toBe(NASTY.map((v) => v + '|').join('') + '2|');
  });
});
