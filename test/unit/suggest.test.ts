import { describe, expect, it } from 'vitest';
import { closest } from '../../src/suggest.js';

describe('closest (did you mean)', () => {
  it('suggests what the error messages promise: typos, swapped letters, case', () => {
    expect(closest('adress', ['name', 'address', 'port'])).toBe('address');
    expect(closest('usr', ['user', 'port'])).toBe('user');
    expect(closest('ngnix', ['base', 'nginx', 'postgres'])).toBe('nginx');
    expect(closest('web_prot', ['web_port', 'web_root'])).toBe('web_port');
    expect(closest('postgres_listen_adresses', ['postgres_listen_addresses', 'postgres_port'])).toBe('postgres_listen_addresses');
    expect(closest('Web1', ['web1', 'web2'])).toBe('web1');
  });

  it('suggests nothing for a name that is not close to any candidate', () => {
    expect(closest('firewall', ['base', 'nginx'])).toBeUndefined();
    expect(closest('db', ['web'])).toBeUndefined();
    expect(closest('x', [])).toBeUndefined();
  });
});
