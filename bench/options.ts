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
  /** Ansible (both flavours) runs in the first N repeats only (the rest are keel only). */
  ansibleRepeats: number;
  /** Above this many hosts, Ansible runs only the no-op scenario, on hosts keel converged. */
  ansibleNoopOnlyAbove: number;
  /** Above this many hosts, targets are light endpoints (sshd only, no systemd, no services in the role). */
  lightAbove: number;
  scaling: boolean;
  overhead: boolean;
  keep: boolean;
}

const TOOLS: readonly Tool[] = ['keel', 'ansible', 'mitogen'];

export const USAGE = `usage: npm run bench -- [--hosts 1,10,100] [--repeats 3] [--tools keel,ansible,mitogen]
                       [--resources 200] [--quick] [--out FILE] [--ansible-max-hosts N]
                       [--ansible-repeats N] [--ansible-noop-only-above N] [--no-scaling] [--no-overhead] [--light-above 20]
  --quick               1 host, 20 resources, 1 repeat, keel only (unless --tools is given)
  --out FILE            where the JSON goes (default bench/results/latest.json; the table goes beside it as .md)
  --ansible-max-hosts N run Ansible and Ansible+Mitogen only up to N hosts (null above, with the reason)
  --ansible-repeats N   run Ansible and Ansible+Mitogen in the first N repeats only (keel in all)
  --light-above N       above N hosts, each host is a container running only sshd (no systemd: the role then
                        has no service resources, the count is kept with more directories)
  --ansible-noop-only-above N  above N hosts, Ansible runs the no-op scenario only, on hosts keel converged
                        (the same state: checked at the first host count)`;

export function parseOptions(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    hosts: [1, 10, 100],
    repeats: 3,
    tools: [...TOOLS],
    resources: 200,
    quick: false,
    out: null,
    ansibleMaxHosts: Number.POSITIVE_INFINITY,
    ansibleRepeats: Number.POSITIVE_INFINITY,
    ansibleNoopOnlyAbove: Number.POSITIVE_INFINITY,
    lightAbove: 20,
    scaling: true,
    overhead: true,
    keep: false,
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
      case '--hosts': o.hosts = value().split(',').map((s) => positive(s, flag)); break;
      case '--repeats': o.repeats = positive(value(), flag); break;
      case '--resources': o.resources = positive(value(), flag); break;
      case '--tools': o.tools = value().split(',').map((s) => tool(s.trim())); break;
      case '--quick': o.quick = true; break;
      case '--out': o.out = value(); break;
      case '--ansible-max-hosts': o.ansibleMaxHosts = positive(value(), flag); break;
      case '--ansible-repeats': o.ansibleRepeats = positive(value(), flag); break;
      case '--ansible-noop-only-above': o.ansibleNoopOnlyAbove = positive(value(), flag); break;
      case '--light-above': o.lightAbove = positive(value(), flag); break;
      case '--no-scaling': o.scaling = false; break;
      case '--no-overhead': o.overhead = false; break;
      case '-h': case '--help': throw new Error(USAGE);
      default: throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  if (o.quick) {
    if (!given.has('--hosts')) o.hosts = [1];
    if (!given.has('--resources')) o.resources = 20;
    if (!given.has('--repeats')) o.repeats = 1;
    if (!given.has('--tools')) o.tools = ['keel'];
  }
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

function tool(s: string): Tool {
  if (!(TOOLS as readonly string[]).includes(s)) throw new Error(`--tools: unknown tool "${s}" (keel, ansible, mitogen)`);
  return s as Tool;
}
