// apt_repository: /etc/apt/sources.list.d/<name>.sources (deb822) plus its signing key, which
// Signed-By pins to this repository only (no apt-key, no trusted.gpg.d). Probe: ONE sha256sum
// for the files of every repository of the run. A key given inline is compared by hash; a key
// from key_url is downloaded only when the key file is missing (as Ansible's get_url does).
// After a change the next package install of the run refreshes apt's lists (see package.ts).
import { raw, sh, type Shell } from '../shell/quote.js';
import { ConfigError } from '../errors.js';
import { change, ok, type Decision, type Facts, type ResourceType } from './types.js';
import { parseShaLine, writeCommands, sha256 } from './file.js';
import { dirname, requireAbsolute } from './paths.js';
import { unique } from '../lists.js';
import { APT_STALE_COMMAND } from './package.js';

export interface AptRepositoryParams {
  /** File stem: /etc/apt/sources.list.d/<name>.sources */
  name: string;
  state?: 'present' | 'absent';
  uri: string;
  suite: string;
  components?: string[];
  /** ASCII-armored public key (`-----BEGIN PGP PUBLIC KEY BLOCK-----`). */
  key?: string;
  /** URL of the key, armored or binary (then signed_by must end in .gpg). */
  key_url?: string;
  arch?: string | string[];
  /** Where the key is stored; default /etc/apt/keyrings/<name>.asc */
  signed_by?: string;
  /** deb, deb-src or both (default deb). */
  types?: string[];
}

const SOURCES_DIR = '/etc/apt/sources.list.d';
const ONE_LINE = /^[^\n\r]+$/;

export const aptRepositoryType: ResourceType<AptRepositoryParams> = {
  name: 'apt_repository',
  doc: {
    summary: 'An apt source (deb822 `.sources` file) with its signing key.',
    example:
      '- apt_repository: {name: elastic-8.x, uri: "https://artifacts.elastic.co/packages/8.x/apt", suite: stable, components: [main], ' +
      'key_url: "https://artifacts.elastic.co/GPG-KEY-elasticsearch"}',
  },
  schema: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      // apt ignores files in sources.list.d whose names use other characters.
      name: { description: 'file name under /etc/apt/sources.list.d/', type: 'string', pattern: '^[A-Za-z0-9_.-]+$' },
      state: { description: 'present (default) or absent', type: 'string', enum: ['present', 'absent'] },
      uri: { description: 'the repository URL', type: 'string', minLength: 1 },
      suite: { description: 'the suite (bookworm, stable...)', type: 'string', minLength: 1 },
      components: { description: 'components (main...)', type: 'array', items: { type: 'string', pattern: '^\\S+$' } },
      key: { description: 'the ASCII-armored signing key', type: 'string', minLength: 1 },
      key_url: { description: 'where to fetch the signing key (https)', type: 'string', pattern: '^https?://' },
      arch: {
        description: 'architectures',
        oneOf: [
          { type: 'string', pattern: '^[a-z0-9-]+$' },
          { type: 'array', items: { type: 'string', pattern: '^[a-z0-9-]+$' } },
        ],
      },
      signed_by: { description: 'a keyring path already on the host', type: 'string', minLength: 1 },
      types: { description: 'deb and/or deb-src', type: 'array', items: { type: 'string', enum: ['deb', 'deb-src'] }, minItems: 1 },
    },
  },

  identity: (p) => p.name,

  normalize(p) {
    const signed_by = requireAbsolute(p.signed_by ?? `/etc/apt/keyrings/${p.name}.asc`, `apt_repository ${p.name}: signed_by`);
    if ((p.state ?? 'present') === 'present') {
      if (p.uri === undefined || p.suite === undefined) throw new ConfigError(`apt_repository ${p.name}: uri and suite are required`);
      for (const [k, v] of [
        ['uri', p.uri],
        ['suite', p.suite],
      ] as const) {
        if (!ONE_LINE.test(v) || /\s/.test(v)) throw new ConfigError(`apt_repository ${p.name}: ${k} cannot contain spaces or newlines`);
      }
      if (p.key !== undefined && p.key_url !== undefined) throw new ConfigError(`apt_repository ${p.name}: give key or key_url, not both`);
      if (p.key === undefined && p.key_url === undefined) throw new ConfigError(`apt_repository ${p.name}: a signing key (key or key_url) is required`);
      if (p.key !== undefined && !p.key.trimStart().startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
        throw new ConfigError(`apt_repository ${p.name}: key must be an ASCII-armored public key (for a binary key use key_url)`);
      }
      if (p.key !== undefined && !signed_by.endsWith('.asc'))
        throw new ConfigError(`apt_repository ${p.name}: an armored key needs a signed_by path ending in .asc`);
      if (p.suite.endsWith('/') && p.components?.length)
        throw new ConfigError(`apt_repository ${p.name}: a flat repository (suite ending in /) takes no components`);
      if (!p.suite.endsWith('/') && !p.components?.length) throw new ConfigError(`apt_repository ${p.name}: components are required (e.g. [main])`);
    }
    return { ...p, signed_by };
  },

  probe(items) {
    const files = unique(items.flatMap((i) => [sourcesPath(i.params), i.params.signed_by!]));
    return sh`for f in ${files}; do if [ -e "$f" ]; then printf 'exists\\t%s\\n' "$f"; fi; done; sha256sum -- ${files} 2>/dev/null\n`;
  },

  parse(output, items) {
    const facts = new Map<string, Facts>();
    for (const line of output.split('\n')) {
      const e = /^exists\t(.*)$/.exec(line);
      if (e) (facts.get(e[1]!) ?? facts.set(e[1]!, {}).get(e[1]!)!).exists = '1';
      const m = parseShaLine(line);
      if (m) (facts.get(m.path) ?? facts.set(m.path, {}).get(m.path)!).sha256 = m.sha;
    }
    return new Map(
      items.map((i) => {
        const s = facts.get(sourcesPath(i.params)) ?? {};
        const k = facts.get(i.params.signed_by!) ?? {};
        const f: Facts = {};
        if (s.exists) f.sources_exists = '1';
        if (s.sha256) f.sources_sha256 = s.sha256;
        if (k.exists) f.key_exists = '1';
        if (k.sha256) f.key_sha256 = k.sha256;
        return [i.key, f];
      }),
    );
  },

  decide(p, f): Decision {
    const sources = sourcesPath(p);
    const key = p.signed_by!;
    if (p.state === 'absent') {
      const gone = [f.sources_exists && sources, f.key_exists && key].filter((x): x is string => !!x);
      if (!gone.length) return ok(`${sources} is absent`);
      return change(`remove ${gone.join(', ')}`, [sh`rm -f -- ${[sources, key]}`, APT_STALE_COMMAND]);
    }
    const content = sourcesContent(p);
    const reasons: string[] = [];
    const cmds: Shell[] = [];
    if (p.key !== undefined && f.key_sha256 !== sha256(p.key)) {
      reasons.push(f.key_exists ? 'key changed' : 'add key');
      cmds.push(
        sh`mkdir -p -m 0755 -- ${dirname(key)}`,
        ...writeCommands({ path: key, content: p.key, mode: '0644', owner: 'root', group: 'root' }, !!f.key_exists),
      );
    } else if (p.key_url !== undefined && !f.key_exists) {
      reasons.push(`download key ${p.key_url}`);
      cmds.push(sh`mkdir -p -m 0755 -- ${dirname(key)}`, ...downloadKeyCommands(p.key_url, key));
    }
    if (f.sources_sha256 !== sha256(content)) {
      reasons.push(f.sources_exists ? `${sources} changed` : `add ${sources}`);
      cmds.push(...writeCommands({ path: sources, content, mode: '0644', owner: 'root', group: 'root' }, !!f.sources_exists));
    }
    if (!reasons.length) return ok(`${sources} and its key are in place`);
    cmds.push(APT_STALE_COMMAND);
    return change(`apt repository ${p.name}: ${reasons.join(', ')}`, cmds, {
      diff: { path: sources, before: null, after: content },
    });
  },
};

export function sourcesContent(p: AptRepositoryParams): string {
  const arch = p.arch === undefined ? [] : Array.isArray(p.arch) ? p.arch : [p.arch];
  const lines = [
    `Types: ${(p.types ?? ['deb']).join(' ')}`,
    `URIs: ${p.uri}`,
    `Suites: ${p.suite}`,
    ...(p.components?.length ? [`Components: ${p.components.join(' ')}`] : []),
    ...(arch.length ? [`Architectures: ${arch.join(' ')}`] : []),
    `Signed-By: ${p.signed_by}`,
  ];
  return lines.join('\n') + '\n';
}

function sourcesPath(p: AptRepositoryParams): string {
  return `${SOURCES_DIR}/${p.name}.sources`;
}

/** Download to a temp file beside the key, check its format against the extension apt reads
 *  it by (.asc armored, .gpg binary), then rename. The URL is a quoted value, never parsed. */
function downloadKeyCommands(url: string, key: string): Shell[] {
  const armored = key.endsWith('.asc');
  return [
    sh`keel_tmp=$(mktemp -- ${dirname(key) + '/.keel-tmp.XXXXXX'})`,
    raw(`trap 'rm -f -- "$keel_tmp"' EXIT`),
    sh`if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$keel_tmp" -- ${url}; else wget -q -O "$keel_tmp" -- ${url}; fi`,
    armored
      ? sh`if [ "$(head -c 5 "$keel_tmp")" != '-----' ]; then echo ${`${url} is not an ASCII-armored key: use a signed_by path ending in .gpg`} >&2; exit 1; fi`
      : sh`if [ "$(head -c 5 "$keel_tmp")" = '-----' ]; then echo ${`${url} is an ASCII-armored key: use a signed_by path ending in .asc`} >&2; exit 1; fi`,
    raw(`chmod 0644 -- "$keel_tmp"`),
    sh`mv -f -- "$keel_tmp" ${key}`,
  ];
}
