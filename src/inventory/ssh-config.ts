// A small OpenSSH client config (ssh_config(5)) reader: enough to resolve a Host alias to
// the address, port, user, identity files and jump hosts ssh itself would use.
//
// Semantics kept from OpenSSH: keywords are case-insensitive; `Keyword value` and
// `Keyword=value` are both accepted; values may be double-quoted; for each keyword the first
// value obtained wins, except IdentityFile, which accumulates; lines before the first Host
// apply to every host; Host patterns use `*`, `?` and `!` negation.
// Not supported (ignored on purpose): `Include` (keel does not follow included files) and
// `Match` blocks (their options are skipped, since we cannot evaluate exec/canonical
// conditions); every other keyword keel does not use is ignored.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, type SourceLocation } from '../errors.js';

interface Option {
  keyword: string; // lower-case
  value: string;
  location: SourceLocation;
}

interface Block {
  /** undefined: options that apply to every host (before any Host line); null: a Match block. */
  patterns: string[] | undefined | null;
  options: Option[];
}

export interface SshConfig {
  file: string;
  blocks: Block[];
}

/** What a Host alias resolves to; fields are absent when the config does not set them. */
export interface SshHostOptions {
  /** True when at least one `Host` pattern (not only global options) matched the alias. */
  matched: boolean;
  hostName?: string;
  port?: number;
  user?: string;
  identityFiles: string[];
  /** ProxyJump hops as written (`[user@]host[:port]`), outermost first; [] for `none`. */
  proxyJump?: string[];
  /** Location of each keyword's winning value (lower-case keyword). */
  locations: Record<string, SourceLocation>;
}

export function parseSshConfig(text: string, file: string): SshConfig {
  const blocks: Block[] = [{ patterns: undefined, options: [] }];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    const location = { file, line: i + 1, column: raw.indexOf(line) + 1 };
    if (!m) throw new ConfigError(`expected "Keyword value", got ${JSON.stringify(line)}`, location);
    const keyword = m[1]!.toLowerCase();
    const args = splitArgs(m[2]!.trim());
    if (args.length === 0) throw new ConfigError(`"${m[1]}" needs a value`, location);
    if (keyword === 'host') blocks.push({ patterns: args, options: [] });
    else if (keyword === 'match') blocks.push({ patterns: null, options: [] });
    else if (keyword !== 'include') {
      blocks[blocks.length - 1]!.options.push({ keyword, value: args.join(' '), location });
    }
  });
  return { file, blocks };
}

/** Reads and parses a config file; undefined when it does not exist. */
export async function readSshConfig(file: string, displayName = file): Promise<SshConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read SSH config: ${(err as Error).message}`, { file: displayName });
  }
  return parseSshConfig(text, displayName);
}

/** The user's OpenSSH config: $KEEL_SSH_CONFIG, else ~/.ssh/config. */
export function userSshConfigPath(): string {
  return process.env['KEEL_SSH_CONFIG'] || path.join(os.homedir(), '.ssh', 'config');
}

export function lookupSshHost(config: SshConfig, alias: string): SshHostOptions {
  const result: SshHostOptions = { matched: false, identityFiles: [], locations: {} };
  const seen = new Set<string>();
  for (const block of config.blocks) {
    if (block.patterns === null) continue;
    if (block.patterns !== undefined) {
      if (!hostMatches(block.patterns, alias)) continue;
      result.matched = true;
    }
    for (const opt of block.options) {
      if (opt.keyword === 'identityfile') {
        result.identityFiles.push(expandIdentityFile(opt.value, alias));
        result.locations[opt.keyword] ??= opt.location;
        continue;
      }
      if (seen.has(opt.keyword)) continue; // first obtained value wins
      seen.add(opt.keyword);
      applyOption(result, opt, alias);
    }
  }
  return result;
}

function applyOption(result: SshHostOptions, opt: Option, alias: string): void {
  switch (opt.keyword) {
    case 'hostname':
      result.hostName = opt.value.replace(/%(%|h)/g, (_, t: string) => (t === 'h' ? alias : '%'));
      break;
    case 'port': {
      const port = Number(opt.value);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new ConfigError(`"Port" must be an integer between 1 and 65535, got ${JSON.stringify(opt.value)}`, opt.location);
      }
      result.port = port;
      break;
    }
    case 'user':
      result.user = opt.value;
      break;
    case 'proxyjump':
      result.proxyJump =
        opt.value.toLowerCase() === 'none'
          ? []
          : opt.value
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean);
      break;
    default:
      return;
  }
  result.locations[opt.keyword] = opt.location;
}

/** True when the alias matches one of the patterns and none of the negated ones. */
export function hostMatches(patterns: string[], alias: string): boolean {
  let matched = false;
  for (const p of patterns) {
    const negated = p.startsWith('!');
    if (!globMatch(negated ? p.slice(1) : p, alias)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatch(pattern: string, text: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(text);
}

/** `~` and `%d` are the home directory, `%h` the alias, `%u` the local user. Relative paths stay
 *  relative (ssh resolves them against its working directory too). */
function expandIdentityFile(value: string, alias: string): string {
  const home = os.homedir();
  const expanded = value.replace(/%([%dhu])/g, (_, t: string) => (t === 'd' ? home : t === 'h' ? alias : t === 'u' ? os.userInfo().username : '%'));
  if (expanded === '~') return home;
  if (expanded.startsWith('~/')) return path.join(home, expanded.slice(2));
  return expanded;
}

/** Splits on whitespace; double-quoted arguments may contain spaces. */
function splitArgs(text: string): string[] {
  const args: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) args.push(m[1] ?? m[2]!);
  return args;
}
