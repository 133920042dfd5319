// What a host is: its distribution, release, codename, architecture and service manager, read
// in the probe script (shell builtins only: no process is spawned for them) and exposed to
// roles as `facts.*`, so that one inventory works on Debian 12 and 13 with no version pinned.
//
// The plan is compiled before any host is reached, so a host whose values depend on its facts
// gets one plan per platform keel knows (variants.ts); its probe script reads the facts first
// and probes with the matching plan, in the same round trip.
import { sh } from '../shell/quote.js';

export interface HostFacts {
  /** os-release ID: debian, ubuntu. */
  distribution: string;
  /** os-release VERSION_ID: 12, 13, 24.04 ("" on testing and unstable). */
  release: string;
  /** os-release VERSION_CODENAME: bookworm, trixie, noble. */
  codename: string;
  /** Debian's name for the machine's architecture: amd64, arm64. */
  architecture: string;
  /** systemd, or what PID 1 is called otherwise. */
  service_manager: string;
}

export const FACT_NAMES = ['distribution', 'release', 'codename', 'architecture', 'service_manager'] as const;
export type FactName = (typeof FACT_NAMES)[number];

/** The platforms a plan is compiled for ahead of the probe, when its values depend on facts.
 *  Another platform costs one more round trip (its plan is compiled once its facts are read). */
export const KNOWN_PLATFORMS: Pick<HostFacts, 'distribution' | 'release' | 'codename'>[] = [
  { distribution: 'debian', release: '12', codename: 'bookworm' },
  { distribution: 'debian', release: '13', codename: 'trixie' },
  { distribution: 'ubuntu', release: '22.04', codename: 'jammy' },
  { distribution: 'ubuntu', release: '24.04', codename: 'noble' },
];
export const KNOWN_ARCHITECTURES = ['amd64', 'arm64'];
export const KNOWN_SERVICE_MANAGERS = ['systemd'];

/** The kernel's machine name (uname -m) as Debian names the architecture. */
const DEBIAN_ARCH: Record<string, string> = {
  x86_64: 'amd64',
  aarch64: 'arm64',
  armv7l: 'armhf',
  armv6l: 'armel',
  i686: 'i386',
  i586: 'i386',
  ppc64le: 'ppc64el',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** Prints `<nonce> F distribution=...` and friends: os-release is read with `read`, the
 *  architecture from /proc (uname only on kernels older than 6.1), the service manager from
 *  /run/systemd/system (systemd's own test) or /proc/1/comm. Sets $keel_platform for a `case`
 *  over the plan variants: distribution/release/codename/architecture/service_manager. */
export function factsSnippet(nonce: string): string {
  return `keel_f_id= keel_f_rel= keel_f_code=
if [ -r /etc/os-release ]; then
  while IFS='=' read -r keel_k keel_v; do
    keel_v=\${keel_v#[\\"\\']}; keel_v=\${keel_v%[\\"\\']}
    case $keel_k in ID) keel_f_id=$keel_v ;; VERSION_ID) keel_f_rel=$keel_v ;; VERSION_CODENAME) keel_f_code=$keel_v ;; esac
  done < /etc/os-release
fi
if [ -r /proc/sys/kernel/arch ]; then read -r keel_f_arch < /proc/sys/kernel/arch; else keel_f_arch=$(uname -m); fi
if [ -d /run/systemd/system ]; then keel_f_svc=systemd; elif [ -r /proc/1/comm ]; then read -r keel_f_svc < /proc/1/comm; else keel_f_svc=; fi
printf '%s F %s\\t%s\\t%s\\t%s\\t%s\\n' ${sh`${nonce}`} "$keel_f_id" "$keel_f_rel" "$keel_f_code" "$keel_f_arch" "$keel_f_svc"
keel_platform=$keel_f_id/$keel_f_rel/$keel_f_code/$keel_f_arch/$keel_f_svc
`;
}

/** The facts line of a probe's output, or undefined when the script did not get that far. */
export function parseHostFacts(stdout: string, nonce: string): HostFacts | undefined {
  const line = new RegExp(`^${nonce} F (.*)$`, 'm').exec(stdout)?.[1];
  if (line === undefined) return undefined;
  const [distribution = '', release = '', codename = '', machine = '', service_manager = ''] = line.split('\t');
  return { distribution, release, codename, architecture: DEBIAN_ARCH[machine] ?? machine, service_manager };
}

/** "Debian 13 (trixie), amd64" */
export function describeFacts(f: HostFacts): string {
  const name = f.distribution ? f.distribution[0]!.toUpperCase() + f.distribution.slice(1) : 'an unknown distribution';
  return `${name}${f.release ? ' ' + f.release : ''}${f.codename ? ` (${f.codename})` : ''}, ${f.architecture || 'unknown architecture'}`;
}

/** The machine names (uname -m) that map to a Debian architecture, for the probe's `case`. */
export function machinesOf(architecture: string): string[] {
  const names = Object.entries(DEBIAN_ARCH)
    .filter(([, a]) => a === architecture)
    .map(([m]) => m);
  return names.length ? names : [architecture];
}
