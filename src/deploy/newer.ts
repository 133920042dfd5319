// Deploy only if newer: a CI job retried, or a pipeline that ran late, must not put back an
// older commit over the one that runs (that is what keel rollback is for). Checked under the
// lock, against what each host said it runs: refused when the commit to deploy is an ancestor
// of a live one, and when keel cannot tell (the live commit is not in this checkout).
import { KeelError } from '../errors.js';
import { isAncestor, isShallow, type Source } from './source.js';

export interface LiveCommit {
  host: string;
  release: string;
  sha: string;
}

/** What git said of each live commit: true, the commit to deploy is one of its ancestors
 *  (or itself); false, it is not; null, git could not tell here. */
export type Ancestry = Map<string, boolean | null>;

export type Verdict = { ok: true; note?: string } | { ok: false; message: string; hint: string };

/** The decision, from git's answers: pure, so every case is tested without a repository. */
export function newerVerdict(src: Source, live: LiveCommit[], ancestry: Ancestry, o: { env: string; shallow: boolean; ref: boolean }): Verdict {
  const what = `${src.branch} @ ${src.sha.slice(0, 12)}`;
  const others = live.filter((l) => l.sha && l.sha !== src.sha);
  if (!others.length) return { ok: true };
  if (src.kind === 'url') {
    return {
      ok: true,
      note:
        `not checked whether ${what} is newer than the live commit: deploy_repo is a git URL, and this machine has not its history` +
        (o.ref ? '' : " (with --branch alone, what is deployed is the branch's tip on the git server now, which a retried job cannot make older)"),
    };
  }
  const hosts = (sha: string) =>
    others
      .filter((l) => l.sha === sha)
      .map((l) => l.host)
      .join(', ');
  const release = (sha: string) => others.find((l) => l.sha === sha)!.release;
  const shas = [...new Set(others.map((l) => l.sha))];
  const older = shas.find((sha) => ancestry.get(sha) === true);
  if (older) {
    return {
      ok: false,
      message:
        `refusing to deploy ${what}: it is older than what ${hosts(older)} run${others.length === 1 ? 's' : ''} ` +
        `(release ${release(older)}, commit ${older.slice(0, 12)}, which already contains it); deploying it would take back every change since`,
      hint: `to go back on purpose: keel rollback ${o.env} (to a release kept on the hosts), or deploy it anyway with --allow-older`,
    };
  }
  const unknown = shas.find((sha) => ancestry.get(sha) !== false);
  if (unknown) {
    return {
      ok: false,
      message:
        `cannot tell whether ${what} is newer than what ${hosts(unknown)} run${others.length === 1 ? 's' : ''} ` +
        `(release ${release(unknown)}, commit ${unknown.slice(0, 12)}): that commit is not in this checkout${o.shallow ? ' (a shallow clone)' : ''}; ` +
        'it may be a newer one, deployed by a pipeline that fetched after this one',
      hint:
        'fetch the whole history (GitHub Actions: actions/checkout with fetch-depth: 0; GitLab CI: GIT_DEPTH: 0; by hand: git fetch), ' +
        'or deploy it anyway with --allow-older',
    };
  }
  return { ok: true };
}

/** Throws (exit 1) when `src` must not be deployed over `live`; a note to print otherwise. */
export async function checkNewer(src: Source, live: LiveCommit[], o: { env: string; allowOlder: boolean; ref: boolean }): Promise<string | undefined> {
  const others = [...new Set(live.map((l) => l.sha).filter((sha) => sha && sha !== src.sha))];
  if (!others.length) return undefined;
  if (o.allowOlder) return `--allow-older: not checked whether ${src.sha.slice(0, 12)} is newer than the live commit`;
  const ancestry: Ancestry = new Map();
  const shallow = src.kind === 'local' && (await isShallow(src));
  if (src.kind === 'local') {
    for (const sha of others) {
      const answer = await isAncestor(src, src.sha, sha);
      // In a shallow clone, "no" may only mean the history between them was not fetched.
      ancestry.set(sha, answer === false && shallow ? null : answer);
    }
  }
  const v = newerVerdict(src, live, ancestry, { env: o.env, shallow, ref: o.ref });
  if (!v.ok) throw new KeelError(v.message, { hint: v.hint });
  return v.note;
}
