// `npm run bench -- [options]`; see bench/README.md.
import type { Tool } from './runners.js';

export interface BenchOptions {
  hosts: number[];
  repeats: number;
  tools: Tool[];
  resources: number;
  quick: boolean;
  out: string | null;
  /** Ansible (both flavours) runs only up to this many hosts; above, its figures are null. */
  ansibleMaxHosts: number;
  /** Ansible+Mitogen runs only up to this many hosts (default: ansibleMaxHosts). */
  mitogenMaxHosts: number;
  /** Ansible (both flavours) runs in the first N repeats only (the rest are keel only). */
  ansibleRepeats: number;
  /** Above this many hosts, Ansible runs only the no-op scenario, on hosts keel converged. */
  ansibleNoopOnlyAbove: number;
  /** Above this many hosts, targets are light endpoints (sshd only, no systemd, no services in the role). */
  lightAbove: number;
  scaling: boolean;
  /** Pairs of the 200 and 400 no-ops (in turn): the growth is the median of their ratios. */
  scalingRepeats: number;
  /** The 200 → 400 no-op taken apart (controller vs host), with the scaling figure. */
  breakdown: boolean;
  overhead: boolean;
  /** What a vault costs `keel inventory` and a no-op provision (bench/vault.ts). */
  vault: boolean;
  vaultRuns: number;
  /** Host counts for the no-op against fake SSH endpoints (bench/fake-endpoint.ts); [] = none. */
  scale: number[];
  /** Worker processes serving the fake endpoints. */
  fakeWorkers: number;
  /** ms a fake endpoint waits before answering a probe; null = the recorded host's own time. */
  fakeDelayMs: number | null;
  keep: boolean;
  /** Speed a user feels (bench/felt.ts): small no-op, demo plan, code-only deploys. */
  felt: boolean;
  /** Runs per checkout of the small no-op and of the demo's plan. */
  feltRuns: number;
  /** Resources of the small no-op's role. */
  feltResources: number;
  /** The demo stack (plan and deploys): off skips setting it up. */
  deploy: boolean;
  deployRuns: number;
  /** Another keel checkout to measure the same way, alternated (its `npm ci` done). */
  baseline: string | null;
  /** Time keel with NODE_EXTRA_CA_CERTS as this machine sets it (bench/node-start.ts). */
  keepNodeExtraCaCerts: boolean;
}

const TOOLS: readonly Tool[] = ['keel', 'ansible', 'mitogen'];

export const USAGE = `usage: npm run bench -- [--hosts 1,10,100] [--repeats 3] [--tools keel,ansible,mitogen]
                       [--resources 200] [--quick] [--out FILE] [--ansible-max-hosts N]
                       [--ansible-repeats N] [--ansible-noop-only-above N] [--no-scaling] [--scaling-repeats 101] [--no-breakdown] [--no-overhead]
                       [--light-above 20] [--no-vault] [--vault-runs 50] [--scale 100,300,1000] [--no-scale]
                       [--fake-workers 4] [--fake-delay-ms N] [--mitogen-max-hosts N]
                       [--no-felt] [--felt-runs 10] [--felt-resources 25] [--no-deploy] [--deploy-runs 5] [--baseline DIR]
                       [--keep-node-extra-ca-certs]
  --quick               1 host, 20 resources, 1 repeat, keel only (unless --tools is given), 3 scaling pairs; no
                        vault, no fake endpoints and no breakdown unless asked for (--vault-runs, --scale, --breakdown)
  --out FILE            where the JSON goes (default bench/results/latest.json; the table goes beside it as .md)
  --ansible-max-hosts N run Ansible and Ansible+Mitogen only up to N hosts (null above, with the reason)
  --ansible-repeats N   run Ansible and Ansible+Mitogen in the first N repeats only (keel in all)
  --light-above N       above N hosts, each host is a container running only sshd (no systemd: the role then
                        has no service resources, the count is kept with more directories)
  --ansible-noop-only-above N  above N hosts, Ansible runs the no-op scenario only, on hosts keel converged
                        (the same state: checked at the first host count)
  --scaling-repeats N   pairs of no-ops at R and 2R resources for each scaling figure (default 101; the growth
                        is the median of the pairs' ratios: a busy machine moves both runs of a pair alike; the
                        results give its 95 % interval and the quartiles too, for how far one pair strays)
  --no-breakdown        skip taking the 200 → 400 no-op apart (controller compile/decide vs the probe on the host)
  --no-vault            skip the vault's cost (50 runs × 4 set-ups of \`keel inventory\` and of a no-op provision)
  --vault-runs N        runs per vault set-up (default 50)
  --scale N,N           no-op against N fake SSH endpoints (default 100,300,1000), replaying a real host's
                        recorded probe output; --no-scale skips it
  --fake-workers N      worker processes serving the fake endpoints (default 4)
  --fake-delay-ms N     a fake endpoint answers a probe after N ms (default: the recorded host's own time)
  --mitogen-max-hosts N run Ansible+Mitogen only up to N hosts (default: --ansible-max-hosts)
  --no-felt             skip the speed a user feels (bench/felt.ts): a one-host no-op of a small role, \`keel plan\` on the
                        demo's three hosts and code-only deploys (on by default; off with --quick unless --felt)
  --felt-runs N         runs of the small no-op and of the demo's plan (default 10)
  --felt-resources N    resources of the small no-op's role (default 25)
  --no-deploy           skip the demo stack (its plan and the code-only deploys)
  --deploy-runs N       code-only deploys (default 5)
  --baseline DIR        measure another keel checkout (its npm ci done) the same way, alternated run by run: the
                        small no-op on the same target, the demo and deploys on a stack of its own (its scripts/demo.mjs)
  --keep-node-extra-ca-certs  time keel with NODE_EXTRA_CA_CERTS as set (by default the bench measures what it
                        costs a Node start, records it, and runs keel without it: bench/node-start.ts)`;

export function parseOptions(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    hosts: [1, 10, 100],
    repeats: 3,
    scalingRepeats: 101,
    tools: [...TOOLS],
    resources: 200,
    quick: false,
    out: null,
    ansibleMaxHosts: Number.POSITIVE_INFINITY,
    ansibleRepeats: Number.POSITIVE_INFINITY,
    ansibleNoopOnlyAbove: Number.POSITIVE_INFINITY,
    lightAbove: 20,
    scaling: true,
    breakdown: true,
    overhead: true,
    vault: true,
    vaultRuns: 50,
    scale: [100, 300, 1000],
    fakeWorkers: 4,
    fakeDelayMs: null,
    keep: false,
    mitogenMaxHosts: Number.NaN,
    felt: true,
    feltRuns: 10,
    feltResources: 25,
    deploy: true,
    deployRuns: 5,
    baseline: null,
    keepNodeExtraCaCerts: false,
  };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    given.add(flag);
    switch (flag) {
      case '--hosts':
        o.hosts = value()
          .split(',')
          .map((s) => positive(s, flag));
        break;
      case '--repeats':
        o.repeats = positive(value(), flag);
        break;
      case '--scaling-repeats':
        o.scalingRepeats = positive(value(), flag);
        break;
      case '--resources':
        o.resources = positive(value(), flag);
        break;
      case '--tools':
        o.tools = value()
          .split(',')
          .map((s) => tool(s.trim()));
        break;
      case '--quick':
        o.quick = true;
        break;
      case '--out':
        o.out = value();
        break;
      case '--ansible-max-hosts':
        o.ansibleMaxHosts = positive(value(), flag);
        break;
      case '--mitogen-max-hosts':
        o.mitogenMaxHosts = positive(value(), flag);
        break;
      case '--no-felt':
        o.felt = false;
        break;
      case '--felt':
        o.felt = true;
        break;
      case '--felt-runs':
        o.feltRuns = positive(value(), flag);
        o.felt = true;
        break;
      case '--felt-resources':
        o.feltResources = positive(value(), flag);
        break;
      case '--no-deploy':
        o.deploy = false;
        break;
      case '--deploy-runs':
        o.deployRuns = positive(value(), flag);
        break;
      case '--baseline':
        o.baseline = value();
        break;
      case '--keep-node-extra-ca-certs':
        o.keepNodeExtraCaCerts = true;
        break;
      case '--ansible-repeats':
        o.ansibleRepeats = positive(value(), flag);
        break;
      case '--ansible-noop-only-above':
        o.ansibleNoopOnlyAbove = positive(value(), flag);
        break;
      case '--light-above':
        o.lightAbove = positive(value(), flag);
        break;
      case '--no-scaling':
        o.scaling = false;
        break;
      case '--no-overhead':
        o.overhead = false;
        break;
      case '--breakdown':
        o.breakdown = true;
        break;
      case '--no-breakdown':
        o.breakdown = false;
        break;
      case '--vault':
        o.vault = true;
        break;
      case '--no-vault':
        o.vault = false;
        break;
      case '--vault-runs':
        o.vaultRuns = positive(value(), flag);
        o.vault = true;
        break;
      case '--scale':
        o.scale = value()
          .split(',')
          .map((x) => positive(x, flag));
        break;
      case '--no-scale':
        o.scale = [];
        break;
      case '--fake-workers':
        o.fakeWorkers = positive(value(), flag);
        break;
      case '--fake-delay-ms':
        o.fakeDelayMs = nonNegative(value(), flag);
        break;
      case '-h':
      case '--help':
        throw new Error(USAGE);
      default:
        throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  if (o.quick) {
    if (!given.has('--hosts')) o.hosts = [1];
    if (!given.has('--resources')) o.resources = 20;
    if (!given.has('--repeats')) o.repeats = 1;
    if (!given.has('--tools')) o.tools = ['keel'];
    // The long parts only when asked for: --quick is what CI runs.
    if (!given.has('--vault') && !given.has('--vault-runs')) o.vault = false;
    if (!given.has('--scale')) o.scale = [];
    if (!given.has('--breakdown')) o.breakdown = false;
    if (!given.has('--felt') && !given.has('--felt-runs')) o.felt = false;
    // Each pair may wait up to 30 s for a quiet machine, and CI's is never quiet: 21 pairs
    // outlasted the smoke test's 10 minutes there.
    if (!given.has('--scaling-repeats')) o.scalingRepeats = 3;
  }
  if (Number.isNaN(o.mitogenMaxHosts)) o.mitogenMaxHosts = o.ansibleMaxHosts;
  o.scale = [...new Set(o.scale)].sort((a, b) => a - b);
  o.hosts = [...new Set(o.hosts)].sort((a, b) => a - b);
  o.tools = TOOLS.filter((t) => o.tools.includes(t));
  if (!o.tools.includes('keel')) throw new Error('--tools must include keel (every ratio is against keel)');
  return o;
}

function positive(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive whole number, got "${s}"`);
  return n;
}

function nonNegative(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: expected a whole number ≥ 0, got "${s}"`);
  return n;
}

function tool(s: string): Tool {
  if (!(TOOLS as readonly string[]).includes(s)) throw new Error(`--tools: unknown tool "${s}" (keel, ansible, mitogen)`);
  return s as Tool;
}
