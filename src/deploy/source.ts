// The code of a deploy, on the controller: the commit a branch names (resolved to a sha here,
// once, so every host gets the same one), the archive of it that travels over SSH, and what
// changed since the live release (deploy --check).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ConfigError, KeelError } from '../errors.js';
import { appendToTar, type TarEntry } from './tar.js';

export interface Source {
  /** The local checkout the code comes from, or the URL hosts clone. */
  repo: string;
  kind: 'local' | 'url';
  branch: string;
  sha: string;
  /** The app's directory inside the repository ("" = its root). */
  subdir: string;
}

const URL_LIKE = /^(ssh|https?|git|file):\/\/|^[^/\s]+@[^:\s]+:/;

export function isGitUrl(repo: string): boolean {
  return URL_LIKE.test(repo);
}

function git(cwd: string, args: string[], opts: { encoding?: 'buffer'; env?: NodeJS.ProcessEnv } = {}): Promise<string | Buffer> {
  return new Promise((res, rej) => {
    const o = { maxBuffer: 512 * 1024 * 1024, encoding: opts.encoding ?? 'utf8', ...(opts.env && { env: opts.env }) };
    execFile('git', ['-C', cwd, ...args], o, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { code?: unknown };
        if (e.code === 'ENOENT') return rej(new ConfigError('git is not installed on this machine; keel deploy needs it to read the code'));
        return rej(Object.assign(new Error(String(stderr).trim() || e.message), { gitExit: e.code }));
      }
      res(stdout);
    });
  });
}

/** The checkout holding `dir` (the project's own repository by default). With deploy_repo
 *  unset, only a checkout whose root is the project itself: one that encloses the project
 *  from above may be anything (a home directory kept in git, a monorepo), and shipping all of
 *  it to the servers must be asked for by naming it. */
export async function localRepo(root: string, repo: string): Promise<string> {
  const dir = repo ? (isAbsolute(repo) ? repo : resolve(root, repo)) : root;
  let top: string;
  try {
    top = String(await git(dir, ['rev-parse', '--show-toplevel'])).trim();
  } catch (err) {
    throw new ConfigError(`deploy_repo: ${dir} is not a git checkout (${(err as Error).message})`, undefined, {
      hint: "set deploy_repo to the path of the app's git checkout (relative to the project) or to a git URL",
    });
  }
  if (!repo && realpathSync(top) !== realpathSync(root)) {
    throw new ConfigError(
      `deploy_repo is not set, and the git checkout around this project is ${top}, above the project (${root}): ` +
        'keel will not ship a repository it was not told to (all of it would go to the servers)',
      undefined,
      {
        hint:
          `if that repository is the app, say so: deploy_repo: ${JSON.stringify(relative(root, top) || '.')} ` +
          "(and deploy_subdir for the app's directory in it); else set deploy_repo to the app's checkout",
      },
    );
  }
  return top;
}

/** --branch (and --ref) to a commit of the local checkout. */
export async function resolveLocal(root: string, repo: string, branch: string, ref: string | undefined, subdir: string): Promise<Source> {
  const dir = await localRepo(root, repo);
  // A CI checkout (GitLab's, a detached HEAD) may have the branch as origin/<branch> only.
  const branchRef = (await commitOf(dir, branch)) || !(await commitOf(dir, `origin/${branch}`)) ? branch : `origin/${branch}`;
  const wanted = ref ?? branchRef;
  let sha: string;
  try {
    sha = String(await git(dir, ['rev-parse', '--verify', '--quiet', `${wanted}^{commit}`])).trim();
  } catch {
    const branches = String(await git(dir, ['for-each-ref', '--format=%(refname:short)', 'refs/heads', 'refs/remotes']).catch(() => ''))
      .split('\n')
      .filter(Boolean);
    throw new ConfigError(`${ref ? `--ref ${ref}` : `--branch ${branch}`}: no such commit in ${dir}`, undefined, {
      hint: branches.length
        ? `branches here: ${branches.slice(0, 15).join(', ')}${branches.length > 15 ? ', ...' : ''} (git fetch first if it is new)`
        : 'git fetch first',
    });
  }
  if (ref) {
    // --ref must be on --branch: a deploy records the branch it came from.
    const on = await git(dir, ['merge-base', '--is-ancestor', sha, `${branchRef}^{commit}`]).then(
      () => true,
      () => false,
    );
    if (!on) throw new ConfigError(`--ref ${ref} (${sha.slice(0, 12)}) is not on --branch ${branch}`);
  }
  if (subdir) {
    const type = String(await git(dir, ['cat-file', '-t', `${sha}:${subdir}`]).catch(() => '')).trim();
    if (type !== 'tree') throw new ConfigError(`deploy_subdir: ${subdir} is not a directory of ${branch} (${sha.slice(0, 12)})`);
  }
  return { repo: dir, kind: 'local', branch, sha, subdir };
}

/** The commit `name` names here, or "" if none. */
async function commitOf(dir: string, name: string): Promise<string> {
  return String(await git(dir, ['rev-parse', '--verify', '--quiet', `${name}^{commit}`]).catch(() => '')).trim();
}

/** A git URL: the hosts clone it; the branch is resolved here with ls-remote when possible. */
export function urlSource(repo: string, branch: string, ref: string | undefined, subdir: string): Source {
  if (ref && !/^[0-9a-f]{7,40}$/.test(ref)) throw new ConfigError(`--ref must be a commit sha with a git URL as deploy_repo, got "${ref}"`);
  return { repo, kind: 'url', branch, sha: ref ?? '', subdir };
}

/** The release's code as a gzipped tar (the subdir's content at the archive's root), with
 *  what a local build made (`extra`, paths relative to the subdir) added: the same commit and
 *  the same outputs give the same bytes. */
export async function archive(src: Source, extra: TarEntry[] = []): Promise<Buffer> {
  const tree = src.subdir ? `${src.sha}:${src.subdir}` : src.sha;
  let tar: Buffer;
  try {
    tar = (await git(src.repo, ['archive', '--format=tar', tree], { encoding: 'buffer' })) as Buffer;
  } catch (err) {
    throw new KeelError(`git archive ${tree} failed in ${src.repo}: ${(err as Error).message}`);
  }
  if (extra.length) tar = appendToTar(tar, extra, await commitTime(src));
  return gzipSync(tar, { level: 6 });
}

/** The commit's time (seconds), which git archive gives every entry. */
async function commitTime(src: Source): Promise<number> {
  return Number(String(await git(src.repo, ['show', '-s', '--format=%ct', src.sha])).trim());
}

/** The commit's files (the whole repository, not only the subdir) written to `dir`, without
 *  touching the checkout or its index: where a local build runs. */
export async function exportTree(src: Source, dir: string): Promise<void> {
  const env = { ...process.env, GIT_INDEX_FILE: join(dir, '.keel-index') };
  try {
    await git(src.repo, ['read-tree', src.sha], { env });
    await git(src.repo, ['checkout-index', '--all', '--force', `--prefix=${join(dir, 'tree')}/`], { env });
  } catch (err) {
    throw new KeelError(`could not write ${src.sha.slice(0, 12)}'s files to ${dir} for the local build: ${(err as Error).message}`);
  }
}

/** A file of the commit (requirements.txt), or null if it does not exist. */
export async function fileAt(src: Source, path: string): Promise<string | null> {
  const full = src.subdir ? `${src.subdir}/${path}` : path;
  return git(src.repo, ['show', `${src.sha}:${full}`]).then(
    (s) => String(s),
    () => null,
  );
}

/** Files changed between two commits (under the subdir), or null if `from` is unknown here. */
export async function changedFiles(src: Source, from: string): Promise<string[] | null> {
  if (
    !(await git(src.repo, ['cat-file', '-e', `${from}^{commit}`]).then(
      () => true,
      () => false,
    ))
  )
    return null;
  const out = String(await git(src.repo, ['diff', '--name-only', from, src.sha, '--', ...(src.subdir ? [src.subdir] : [])]));
  return out
    .split('\n')
    .filter(Boolean)
    .map((f) => (src.subdir && f.startsWith(src.subdir + '/') ? f.slice(src.subdir.length + 1) : f));
}

/** Whether commit `a` is an ancestor of `b` (or the same), or null when one of them is not in
 *  this checkout (a shallow clone, a commit not fetched yet). */
export async function isAncestor(src: Source, a: string, b: string): Promise<boolean | null> {
  for (const c of [a, b]) {
    const known = await git(src.repo, ['cat-file', '-e', `${c}^{commit}`]).then(
      () => true,
      () => false,
    );
    if (!known) return null;
  }
  try {
    await git(src.repo, ['merge-base', '--is-ancestor', a, b]);
    return true;
  } catch (err) {
    // Exit 1 is git's "no"; anything else (a shallow history cut between them) is not known.
    if ((err as { gitExit?: unknown }).gitExit === 1) return false;
    return null;
  }
}

/** A clone without the whole history (CI's default fetch depth). */
export async function isShallow(src: Source): Promise<boolean> {
  return String(await git(src.repo, ['rev-parse', '--is-shallow-repository']).catch(() => 'false')).trim() === 'true';
}

/** The virtualenv a release uses is keyed by what makes it: the requirements, the python,
 *  and where packages come from. Same key: the previous release's environment is reused. */
export function venvKey(requirements: string | null, python: string, indexUrl: string, wheelhouse: string): string {
  return createHash('sha256')
    .update(JSON.stringify([requirements ?? '', python, indexUrl, wheelhouse]))
    .digest('hex')
    .slice(0, 16);
}

/** releases/<time>-<sha>: sortable by time, says what it holds. */
export function releaseId(sha: string, now = new Date()): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
    .replace('T', '-');
  return `${t}-${sha.slice(0, 12)}`;
}
