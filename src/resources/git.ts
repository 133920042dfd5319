// git: a checkout of `repo` at `version` (branch, tag or commit; default: the remote's HEAD).
// Probe, per checkout: `git rev-parse HEAD` and the origin URL (2 processes; + `git status`
// with force), and for a branch or tag ONE `git ls-remote` to learn the wanted commit. That is
// a network call at probe time, as Ansible's git module makes: without it "is the checkout up
// to date" cannot be answered. It is bounded by `timeout` and never prompts.
// A branch is checked out as a local branch reset to origin's; a tag or a commit detached.
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';
import { ConfigError } from '../errors.js';
import { change, ok, parseFacts, type Decision, type ResourceType } from './types.js';
import { requireAbsolute } from './paths.js';
import { ACCOUNT_NAME } from './group.js';

export interface GitParams {
  repo: string;
  dest: string;
  version?: string;
  depth?: number;
  /** Run git as this user (its ssh keys and credentials are used); dest is owned by it. */
  owner?: string;
  /** Discard local changes to tracked files. */
  force?: boolean;
}

const SHA = /^[0-9a-f]{7,40}$/;
const LS_REMOTE_TIMEOUT = 60;

export const gitType: ResourceType<GitParams> = {
  name: 'git',
  doc: {
    summary: 'A git checkout at a branch, tag or commit (for code that is not deployed with keel deploy).',
    example: '- git: {repo: "https://example.org/tools.git", dest: /opt/tools, version: v1.2}',
  },
  schema: {
    type: 'object',
    required: ['repo', 'dest'],
    additionalProperties: false,
    properties: {
      repo: { description: 'the repository URL', type: 'string', minLength: 1 },
      dest: { description: 'absolute path of the checkout', type: 'string', minLength: 1 },
      version: { description: "branch, tag or commit (default: the remote's HEAD)", type: 'string', minLength: 1 },
      depth: { description: 'shallow clone depth', type: 'integer', minimum: 1 },
      owner: { description: 'clone and update as this user', type: 'string', pattern: ACCOUNT_NAME },
      force: { description: 'discard local changes in the checkout', type: 'boolean' },
    },
  },

  identity: (p) => p.dest,

  normalize(p) {
    const dest = requireAbsolute(p.dest, 'git dest');
    if (p.repo.startsWith('-') || /[\n\0]/.test(p.repo)) throw new ConfigError(`git ${dest}: invalid repo "${p.repo}"`);
    if (p.version !== undefined && (p.version.startsWith('-') || /[\s~^:?*[\\]|\.\.|\0/.test(p.version))) {
      throw new ConfigError(`git ${dest}: "${p.version}" is not a valid branch, tag or commit`);
    }
    return { ...p, dest };
  },

  probe(items) {
    const s: Shell[] = [];
    for (const { key, params: p } of items) {
      // Reading as root a checkout owned by someone else needs safe.directory (git >= 2.35.2).
      const rd = sh`git -c safe.directory='*' -C ${p.dest}`;
      const dirty = p.force ? sh`; printf '%s\\tdirty\\t%s\\n' ${key} "$(${rd} status --porcelain --untracked-files=no 2>/dev/null | head -n 1)"` : raw('');
      const head = sh`printf '%s\\thead\\t%s\\n' ${key} "$(${rd} rev-parse -q --verify HEAD 2>/dev/null)"`;
      const origin = sh`printf '%s\\torigin\\t%s\\n' ${key} "$(${rd} config --get remote.origin.url 2>/dev/null)"`;
      s.push(sh`if [ -e ${p.dest + '/.git'} ]; then ${head}; ${origin}${dirty}; fi\n`);
      const ls =
        p.version === undefined
          ? sh`ls-remote --symref -- ${p.repo} HEAD`
          : !SHA.test(p.version)
            ? sh`ls-remote -- ${p.repo} ${[`refs/heads/${p.version}`, `refs/tags/${p.version}`, `refs/tags/${p.version}^{}`]}`
            : undefined;
      if (ls) s.push(sh`${remote(p, ls, { timeout: true })} 2>/dev/null | while IFS= read -r l; do printf '%s\\tref\\t%s\\n' ${key} "$l"; done\n`);
    }
    return joinShell(s, '');
  },

  parse(output, items) {
    // `ref` lines repeat (one per ls-remote line): gather them, not just the last.
    const facts = parseFacts(output);
    const refs = new Map<string, string[]>();
    for (const line of output.split('\n')) {
      const m = /^(.*?)\tref\t(.*)$/.exec(line);
      if (m) refs.set(m[1]!, [...(refs.get(m[1]!) ?? []), m[2]!]);
    }
    return new Map(
      items.map((i) => {
        const f = { ...(facts.get(i.key) ?? {}) };
        delete f.ref;
        const want = resolve(i.params.version, refs.get(i.key) ?? []);
        if (want) Object.assign(f, want);
        return [i.key, f];
      }),
    );
  },

  decide(p, f): Decision {
    const cloned = f.head !== undefined;
    const version = p.version ?? 'HEAD';
    const sha = p.version !== undefined && SHA.test(p.version) ? p.version : undefined;
    const want = sha ?? f.want;
    const reasons: string[] = [];
    if (!cloned) reasons.push(`clone ${p.repo}`);
    else {
      if (f.origin !== p.repo) reasons.push(`origin ${f.origin || '(none)'} -> ${p.repo}`);
      if (!want) reasons.push(`cannot resolve ${version} on ${p.repo}: fetching`);
      else if (!f.head || !f.head.startsWith(want)) reasons.push(`${short(f.head)} -> ${version} (${short(want)})`);
      if (p.force && f.dirty) reasons.push('discard local changes');
    }
    if (!reasons.length) return ok(`${p.dest} at ${version} (${short(f.head)})`);
    return change(`${p.dest}: ${reasons.join(', ')}`, commands(p, sha ? 'commit' : (f.kind as Kind | undefined), f.branch));
  },
};

type Kind = 'branch' | 'tag' | 'commit';

/** Pick the wanted commit out of ls-remote lines (`sha\tref`, `ref: refs/heads/x\tHEAD`). */
function resolve(version: string | undefined, lines: string[]): Record<string, string> | undefined {
  const byRef = new Map<string, string>();
  let headBranch: string | undefined;
  for (const l of lines) {
    const sym = /^ref: refs\/heads\/(.+)\tHEAD$/.exec(l);
    if (sym) headBranch = sym[1];
    const m = /^([0-9a-f]{40,64})\t(.+)$/.exec(l);
    if (m) byRef.set(m[2]!, m[1]!);
  }
  if (version === undefined) {
    const head = byRef.get('HEAD');
    if (!head) return undefined;
    return headBranch ? { want: head, kind: 'branch', branch: headBranch } : { want: head, kind: 'commit' };
  }
  const peeled = byRef.get(`refs/tags/${version}^{}`) ?? byRef.get(`refs/tags/${version}`);
  if (peeled) return { want: peeled, kind: 'tag' };
  const branch = byRef.get(`refs/heads/${version}`);
  if (branch) return { want: branch, kind: 'branch', branch: version };
  return undefined;
}

function commands(p: GitParams, kind: Kind | undefined, branch: string | undefined): Shell[] {
  const git = (args: Shell) => remote(p, sh`-C ${p.dest} ${args}`);
  const depth = p.depth !== undefined ? sh`--depth ${p.depth}` : raw('');
  const force = p.force ? raw('-f ') : raw('');
  const cmds: Shell[] = [];
  // Shaped to converge from any state: init is a no-op on a checkout, config sets origin.
  if (p.owner !== undefined) cmds.push(sh`if [ ! -e ${p.dest} ]; then mkdir -p -- ${p.dest}; chown -- ${p.owner} ${p.dest}; fi`);
  cmds.push(
    sh`if [ ! -e ${p.dest + '/.git'} ]; then ${remote(p, sh`init -q -- ${p.dest}`)}; fi`,
    git(sh`config remote.origin.url ${p.repo}`),
    git(sh`config remote.origin.fetch ${'+refs/heads/*:refs/remotes/origin/*'}`),
  );
  const v = p.version ?? 'HEAD';
  switch (kind) {
    case 'branch': {
      const b = branch ?? v;
      cmds.push(git(sh`fetch -q ${depth} origin ${`+refs/heads/${b}:refs/remotes/origin/${b}`}`));
      cmds.push(git(sh`checkout -q ${force}-B ${b} ${`refs/remotes/origin/${b}`}`));
      break;
    }
    case 'tag':
      cmds.push(git(sh`fetch -q ${depth} origin ${`+refs/tags/${v}:refs/tags/${v}`}`));
      cmds.push(git(sh`checkout -q ${force}--detach ${`refs/tags/${v}^{commit}`}`));
      break;
    case 'commit':
      // Servers may refuse to send an arbitrary commit: fetch the branches, then the commit
      // itself if it still is missing (GitHub and GitLab allow that).
      cmds.push(git(sh`fetch -q ${depth} origin`));
      cmds.push(sh`${git(sh`cat-file -e ${v + '^{commit}'}`)} 2>/dev/null || ${git(sh`fetch -q ${depth} origin ${v}`)}`);
      cmds.push(git(sh`checkout -q ${force}--detach ${v}`));
      break;
    default:
      // ls-remote failed at probe time (no network then?): let git resolve it now.
      cmds.push(git(sh`fetch -q ${depth} origin ${v}`));
      cmds.push(git(sh`checkout -q ${force}--detach FETCH_HEAD`));
  }
  return cmds;
}

/** A git command as the owner, never prompting (no tty: a prompt would hang the run); a probe's
 *  ls-remote gets a time limit (an unreachable remote must not hold the whole run). */
function remote(p: GitParams, args: Shell, o: { timeout?: boolean } = {}): Shell {
  const env = sh`env GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND=${'ssh -o BatchMode=yes'}`;
  const asOwner = p.owner !== undefined ? sh`runuser -u ${p.owner} -- ` : raw('');
  const limit = o.timeout ? sh`timeout ${LS_REMOTE_TIMEOUT} ` : raw('');
  return sh`${limit}${asOwner}${env} git ${args}`;
}

function short(sha: string | undefined): string {
  return sha ? sha.slice(0, 12) : '(none)';
}
