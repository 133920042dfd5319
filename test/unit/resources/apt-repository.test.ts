import { describe, expect, it } from 'vitest';
import { aptRepositoryType, sourcesContent, type AptRepositoryParams } from '../../../src/resources/apt-repository.js';
import { sha256 } from '../../../src/resources/file.js';
import { quote } from '../../../src/shell/quote.js';
import { ConfigError } from '../../../src/errors.js';
import { commandsOf, decide, expectOk, expectShellSyntax, items, norm, probeHere } from './helpers.js';

const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFx...\n-----END PGP PUBLIC KEY BLOCK-----\n';
const PG: AptRepositoryParams = {
  name: 'pgdg',
  uri: 'https://apt.postgresql.org/pub/repos/apt',
  suite: 'bookworm-pgdg',
  components: ['main'],
  key: KEY,
  arch: 'amd64',
};
const SOURCES = `Types: deb
URIs: https://apt.postgresql.org/pub/repos/apt
Suites: bookworm-pgdg
Components: main
Architectures: amd64
Signed-By: /etc/apt/keyrings/pgdg.asc
`;

describe('apt_repository', () => {
  it('deb822 content', () => {
    expect(sourcesContent(norm(aptRepositoryType, PG))).toBe(SOURCES);
  });
  it('parse: one sha256sum for every file', () => {
    const out =
      'exists\t/etc/apt/sources.list.d/pgdg.sources\nexists\t/etc/apt/keyrings/pgdg.asc\n' +
      `${sha256(SOURCES)}  /etc/apt/sources.list.d/pgdg.sources\n${sha256(KEY)}  /etc/apt/keyrings/pgdg.asc\n`;
    const f = aptRepositoryType.parse!(out, items(aptRepositoryType, [PG]));
    expect(f.get('k0')).toEqual({ sources_exists: '1', sources_sha256: sha256(SOURCES), key_exists: '1', key_sha256: sha256(KEY) });
  });
  it('probe runs read-only here; nothing of this name exists', () => {
    expect(probeHere(aptRepositoryType, [{ ...PG, name: 'keel-test-none' }]).get('k0')).toEqual({});
  });
  it('converged', () => {
    expectOk(decide(aptRepositoryType, PG, { sources_exists: '1', sources_sha256: sha256(SOURCES), key_exists: '1', key_sha256: sha256(KEY) }));
    const byUrl = { ...PG, key: undefined, key_url: 'https://example.org/k.asc' };
    expectOk(decide(aptRepositoryType, byUrl, { sources_exists: '1', sources_sha256: sha256(SOURCES), key_exists: '1', key_sha256: 'x' }));
  });
  it('adds key and sources atomically, then marks the apt lists stale', () => {
    const c = commandsOf(decide(aptRepositoryType, PG, {}));
    const all = c.join('\n');
    expect(all).toContain('mkdir -p -m 0755 -- /etc/apt/keyrings');
    expect(all).toContain('mv -f -- "$keel_tmp" /etc/apt/keyrings/pgdg.asc');
    expect(all).toContain('mv -f -- "$keel_tmp" /etc/apt/sources.list.d/pgdg.sources');
    expect(c.at(-1)).toBe(': > "$KEEL_RUN_DIR/apt-stale"');
    expectShellSyntax(all);
  });
  it('only the sources changed', () => {
    const d = decide(aptRepositoryType, PG, { sources_exists: '1', sources_sha256: 'old', key_exists: '1', key_sha256: sha256(KEY) });
    expect(d.reason).toBe('apt repository pgdg: /etc/apt/sources.list.d/pgdg.sources changed');
    expect(commandsOf(d).join('\n')).not.toContain('keyrings');
  });
  it('key_url: downloaded with curl or wget, format checked against the extension', () => {
    const url = `https://example.org/k.gpg?a=1&b='$(x)'`;
    const all = commandsOf(decide(aptRepositoryType, { ...PG, key: undefined, key_url: url, signed_by: '/usr/share/keyrings/x.gpg' }, {})).join('\n');
    expect(all).toContain(`curl -fsSL --retry 3 -o "$keel_tmp" -- ${quote(url)}`);
    expect(all).toContain(`wget -q -O "$keel_tmp" -- ${quote(url)}`);
    expect(all).toContain('is an ASCII-armored key');
    expectShellSyntax(all);
  });
  it('absent', () => {
    expectOk(decide(aptRepositoryType, { name: 'pgdg', state: 'absent' } as AptRepositoryParams, {}));
    const c = commandsOf(decide(aptRepositoryType, { name: 'pgdg', state: 'absent' } as AptRepositoryParams, { sources_exists: '1' }));
    expect(c[0]).toBe('rm -f -- /etc/apt/sources.list.d/pgdg.sources /etc/apt/keyrings/pgdg.asc');
  });
  it('rejects impossible params', () => {
    expect(() => decide(aptRepositoryType, { ...PG, suite: 'a\nTypes: deb-src' }, {})).toThrow(ConfigError);
    expect(() => decide(aptRepositoryType, { ...PG, key: 'not armored' }, {})).toThrow(ConfigError);
    expect(() => decide(aptRepositoryType, { ...PG, key: undefined }, {})).toThrow(ConfigError);
    expect(() => decide(aptRepositoryType, { ...PG, components: [] }, {})).toThrow(ConfigError);
    expect(() => decide(aptRepositoryType, { ...PG, suite: './', components: undefined, key_url: 'https://x' }, {})).toThrow(ConfigError);
  });
});
