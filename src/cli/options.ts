// Option parsers and the options every command that acts on hosts shares.
import type { Command } from 'commander';
import { ConfigError } from '../errors.js';

export interface HostOptions {
  limit?: string[];
  forks?: number;
  output?: 'text' | 'json';
  inventory?: string;
  extraVars?: string[];
  acceptNewHostKeys?: boolean;
  askBecomePass?: boolean;
  verbose?: boolean;
}

/** --limit, --forks, --output, -i, -e, --accept-new-host-keys, -K, -v. `inventoryShort: false`
 *  leaves -i to the command (keel exec -i: interactive); --inventory stays. */
export function hostOptions(c: Command, { inventoryShort = true } = {}): Command {
  return c
    .option('-l, --limit <hosts>', 'only these hosts or groups (comma-separated)', list)
    .option('--forks <n>', 'hosts to work on at once (default: all)', positiveInt)
    .option('--output <format>', 'text or json (one JSON document on stdout)', 'text')
    .option(`${inventoryShort ? '-i, ' : ''}--inventory <file>`, 'inventory file instead of inventories/<env>.yaml|.ini')
    .option(
      '-e, --extra-vars <key=value|@file.yaml>',
      'a variable, highest precedence, as a literal string; typed values from a YAML file with @ (repeatable)',
      collect,
      [],
    )
    .option('--accept-new-host-keys', 'trust and record host keys of hosts not yet in known_hosts (prints each)')
    .option('-K, --ask-become-pass', 'ask for the sudo password (else the variable become_password, e.g. from the vault)')
    .option('-v, --verbose', 'also list what was already fine');
}

export function checkOutput(o: { output?: string }): boolean {
  if (o.output && o.output !== 'json' && o.output !== 'text') throw new ConfigError(`--output must be text or json, got "${o.output}"`);
  return o.output === 'json';
}

export function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}

/** --wait-lock 10m: "90s", "10m", "1h", "1h30m", or a number of seconds; at most a day. */
export function duration(flag: string): (v: string) => number {
  return (v) => {
    const t = v.trim();
    const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$/.exec(t);
    const ms = m && t ? (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000 : NaN;
    if (!(ms > 0)) throw new ConfigError(`${flag} takes a duration like 90s, 10m, 1h or 1h30m, not "${v}"`);
    if (ms > 24 * 3600 * 1000) throw new ConfigError(`${flag} ${v} is longer than a day`);
    return ms;
  };
}

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`expected a positive integer, got "${v}"`);
  return n;
}

/** The command as the lock records it: `provision staging --limit web1` (no -e values, which
 *  may be anything a CI job passes). */
export function describeCommand(name: string, env: string, o: HostOptions & { tags?: string[] }, extra: string[] = []): string {
  const parts = [name, env, ...extra];
  if (o.limit?.length) parts.push('--limit', o.limit.join(','));
  if (o.tags?.length) parts.push('--tags', o.tags.join(','));
  if (o.extraVars?.length) parts.push(`(${o.extraVars.length} -e)`);
  return parts.join(' ');
}
