// package: Debian packages through apt. One dpkg-query for every package of the run; the apt
// cache is refreshed at most once per run, and only when it is missing or older than
// cache_valid_time (an hour by default).
import { raw, sh, type Shell } from '../shell/quote.js';
import { change, ok, type Decision, type Facts, type ResourceType } from './types.js';

export interface PackageParams {
  name: string | string[];
  state?: 'present' | 'absent' | 'latest';
  /** Seconds the apt lists stay fresh before an install refreshes them (default 3600). */
  cache_valid_time?: number;
  /** Install recommended packages too (apt's default: true). */
  install_recommends?: boolean;
}

const NAME = '^[a-z0-9][a-z0-9+.-]*(:[a-z0-9]+)?(=[A-Za-z0-9.+~:-]+)?$';
/** Changed configuration files of a package are kept (no prompt). */
const KEEP_CONFFILES = sh`-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold`;

export const packageType: ResourceType<PackageParams> = {
  name: 'package',
  doc: {
    summary:
      'Debian packages with apt: present, absent or latest. ' +
      'One `dpkg-query` answers for every package of the run; the apt cache is refreshed at most once per run. ' +
      'A barrier: what follows is decided again after an install.',
    example: '- package: {name: [nginx, curl]}\n- package: {name: unattended-upgrades, state: absent}',
  },
  barrier: true,
  schema: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      name: {
        description: 'a package name or a list of them',
        oneOf: [
          { type: 'string', pattern: NAME },
          { type: 'array', items: { type: 'string', pattern: NAME }, minItems: 1 },
        ],
      },
      state: { description: 'present (default), absent or latest', type: 'string', enum: ['present', 'absent', 'latest'] },
      cache_valid_time: { description: 'refresh the apt cache if it is older than this many seconds before installing', type: 'integer', minimum: 0 },
      install_recommends: { description: 'install recommended packages too (default: no)', type: 'boolean' },
    },
  },

  identity: (p) => names(p).join(', '),

  probe(items) {
    const all = [...new Set(items.flatMap((i) => names(i.params).map(bare)))];
    let s = sh`dpkg-query -W -f '\${Package}:\${Architecture}\\t\${db:Status-Abbrev}\\t\${Version}\\n' -- ${all} 2>/dev/null\n`;
    const latest = [...new Set(items.filter((i) => i.params.state === 'latest').flatMap((i) => names(i.params).map(bare)))];
    if (latest.length) s = sh`${s}echo --candidates; apt-cache policy -- ${latest} 2>/dev/null\n`;
    return s;
  },

  parse(output, items) {
    const installed = new Map<string, string>();
    const candidate = new Map<string, string>();
    let section = 'dpkg';
    let current = '';
    for (const line of output.split('\n')) {
      if (line === '--candidates') {
        section = 'policy';
        continue;
      }
      if (section === 'dpkg') {
        // `name:arch`; the second letter of the status is the state: `ii` installed, `hi` held
        // but installed too (checking `ii` only made held packages install again every run).
        const [pkgArch, status, version] = line.split('\t');
        if (!pkgArch || status?.[1] !== 'i') continue;
        const pkg = pkgArch.replace(/:[^:]*$/, '');
        installed.set(pkgArch, version ?? '');
        // A bare name means the native (or arch-all) package: the first one dpkg lists.
        if (!installed.has(pkg)) installed.set(pkg, version ?? '');
      } else {
        const head = /^(\S+):$/.exec(line);
        if (head) current = head[1]!;
        const cand = /^\s+Candidate:\s+(\S+)/.exec(line);
        if (cand && cand[1] !== '(none)') candidate.set(current, cand[1]!);
      }
    }
    return new Map(
      items.map((i) => {
        const f: Facts = {};
        for (const n of names(i.params).map(bare)) {
          if (installed.has(n)) f[`v:${n}`] = installed.get(n)!;
          if (candidate.has(n)) f[`c:${n}`] = candidate.get(n)!;
        }
        return [i.key, f];
      }),
    );
  },

  decide(p, f): Decision {
    const list = names(p);
    const state = p.state ?? 'present';
    if (state === 'absent') {
      const present = list.filter((n) => f[`v:${bare(n)}`] !== undefined);
      if (!present.length) return ok(`${list.join(', ')} not installed`);
      return change(`remove ${present.join(', ')}`, [
        sh`DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=300 -- ${present.map(bare)}`,
      ]);
    }
    const missing = list.filter((n) => {
      const have = f[`v:${bare(n)}`];
      if (have === undefined) return true;
      const pinned = n.split('=')[1];
      if (pinned !== undefined) return have !== pinned;
      if (state === 'latest') {
        const cand = f[`c:${bare(n)}`];
        return cand !== undefined && cand !== have;
      }
      return false;
    });
    if (!missing.length) {
      return ok(list.map((n) => `${bare(n)} ${f[`v:${bare(n)}`]}`).join(', ') + (state === 'latest' ? ' (latest)' : ' installed'));
    }
    const recommends = p.install_recommends === false ? ['--no-install-recommends'] : [];
    return change(`install ${missing.join(', ')}`, [
      aptRefreshCommand(p.cache_valid_time ?? 3600),
      sh`DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 ${KEEP_CONFFILES} ${recommends} -- ${missing}`,
    ]);
  },

  explainFailure(_p, output) {
    // apt: "E: Unable to locate package X", "E: Package 'X' has no installation candidate",
    // "E: Version '1.2' for 'X' was not found".
    const missing = [
      ...output.matchAll(/Unable to locate package (\S+)|Package '([^']+)' has no installation candidate|Version '[^']+' for '([^']+)' was not found/g),
    ].map((m) => m[1] ?? m[2] ?? m[3]);
    if (!missing.length) return undefined;
    const list = [...new Set(missing)].join(', ');
    return `apt has no ${list} for this host (not in its release, or not in its apt sources)`;
  },
};

/** Refresh apt's lists once per run ($KEEL_RUN_DIR is the run's private temp dir) and only
 *  when they are missing or older than maxAge seconds. */
export function aptRefreshCommand(maxAgeSeconds: number): Shell {
  const freshList = sh`find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -newermt "-${maxAgeSeconds} seconds" 2>/dev/null | head -n 1`;
  const needed = sh`[ -e "$KEEL_RUN_DIR/apt-stale" ] || { [ ! -e "$KEEL_RUN_DIR/apt-updated" ] && [ -z "$(${freshList})" ]; }`;
  return sh`if ${needed}; then apt-get update -q -o DPkg::Lock::Timeout=300 >&2; rm -f "$KEEL_RUN_DIR/apt-stale"; fi; : > "$KEEL_RUN_DIR/apt-updated"`;
}

/** Run by apt_repository after a change: the lists are fresh by age but miss the new source,
 *  so the next refresh must update regardless of cache_valid_time. */
export const APT_STALE_COMMAND = raw(': > "$KEEL_RUN_DIR/apt-stale"');

function names(p: PackageParams): string[] {
  return Array.isArray(p.name) ? p.name : [p.name];
}

/** "nginx=1.22.1-9" -> "nginx" */
function bare(n: string): string {
  return n.split('=')[0]!;
}
