// command: the role author's own shell. It is idempotent only through its guards: `creates`
// (skip when the path exists), `removes` (run only when it exists), `unless` (skip when it
// exits 0), `only_if` (run only when it exits 0). The probe evaluates the guards: the shell
// ones (`unless`, `only_if`) are started before any type is probed and run up to four at once,
// since each is usually a program of its own (psql, a health check) that a host's probe used to
// wait for one by one. The apply re-checks them, one at a time, since an earlier resource of
// the run may have changed things since.
// The author's code is evaluated by `eval` (a shell builtin) in a subshell with set +e, rather
// than pasted into keel's script: it is still their shell, as written, but a syntax error or
// an `exit` in it cannot break the host's whole script, and it runs with sh's normal
// semantics, like Ansible's shell module. No process's argv carries the code (it could hold a
// secret from the vault): as another user it is piped by the builtin printf to runuser's sh.
// stdin is /dev/null: keel's script itself travels on stdin.
// env values are exported inside the script (which travels on stdin), never put on a command
// line, so they don't show in `ps`.
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';
import { ConfigError } from '../errors.js';
import { change, ok, parseFacts, type Decision, type ResourceType } from './types.js';
import { ACCOUNT_NAME } from './group.js';

export interface CommandParams {
  run: string;
  creates?: string;
  removes?: string;
  unless?: string;
  only_if?: string;
  cwd?: string;
  /** Run as this user (runuser -u), guards included. */
  user?: string;
  env?: Record<string, string>;
  /** After it ran, wait up to this many seconds for its guard to hold (a service starting). */
  settle?: number;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Guards (`unless`, `only_if`) the probe runs at once. */
const GUARD_JOBS = 4;

export const commandType: ResourceType<CommandParams> = {
  name: 'command',
  doc: {
    summary:
      'Your own shell, as written (evaluated by `sh`, never passed in argv). Idempotent only through its guards, which the probe evaluates: ' +
      'a command runs at most once per run, and one whose guard is still unmet after it ran fails the host. ' +
      'The probe runs up to four `unless`/`only_if` guards at once, so a guard must be a check that changes nothing. ' +
      'Without a guard it is reported as not idempotent.',
    example: '- command:\n    run: "{{quote app_python}} -m venv {{quote app_venv}}"\n    creates: "{{app_venv}}/bin/python"\n    user: "{{app_user}}"',
  },
  schema: {
    type: 'object',
    required: ['run'],
    additionalProperties: false,
    properties: {
      run: { description: 'the shell to run', type: 'string', minLength: 1 },
      creates: { description: 'skip when this path exists', type: 'string', minLength: 1 },
      removes: { description: 'run only when this path exists', type: 'string', minLength: 1 },
      unless: { description: 'skip when this shell exits 0', type: 'string', minLength: 1 },
      only_if: { description: 'run only when this shell exits 0', type: 'string', minLength: 1 },
      cwd: { description: 'the directory to run in', type: 'string', minLength: 1 },
      user: { description: 'run as this user (runuser), guards included', type: 'string', pattern: ACCOUNT_NAME },
      env: {
        description: 'environment variables (exported inside the script, never on a command line)',
        type: 'object',
        additionalProperties: { type: 'string' },
      },
      settle: {
        description:
          'after it ran, wait up to this many seconds for its guard (creates, removes, unless) to hold, checking twice a second: ' +
          "a service that takes time to start. It fails saying what it waited for, with the guard's last output",
        type: 'integer',
        minimum: 1,
        maximum: 3600,
      },
    },
  },

  identity: (p) => firstLine(p.run),

  runsOnce: true,

  unmet(p, f) {
    if (f.cwd === 'missing') return `its cwd ${p.cwd} does not exist`;
    if (p.creates !== undefined && f.creates !== '1') return `${p.creates} still does not exist`;
    if (p.removes !== undefined && f.removes !== '0') return `${p.removes} still exists`;
    if (p.unless !== undefined && f.unless !== '0') return `\`unless\` still fails (exit ${f.unless ?? '?'}): ${firstLine(p.unless)}`;
    return 'its guard is still unmet';
  },

  normalize(p) {
    for (const k of Object.keys(p.env ?? {})) {
      if (!ENV_NAME.test(k)) throw new ConfigError(`command: env name "${k}" is not a valid variable name`);
    }
    if (p.settle !== undefined && p.creates === undefined && p.removes === undefined && p.unless === undefined) {
      throw new ConfigError('command: settle waits for a guard to hold after the command ran: give it creates, removes or unless');
    }
    return p;
  },

  // The path guards are builtins, answered in the command section. `unless` and `only_if` run
  // the author's shell (a psql, a health check: tens of ms each), so probeStart starts them as
  // background jobs, up to GUARD_JOBS at once, before any type is probed; the command section
  // takes each one's exit status with `wait PID` and prints it. No job writes to the output.
  probeStart(items) {
    const out: Shell[] = [];
    for (const { params: p, jobs } of guardJobs(items)) {
      if (!jobs.length) continue;
      const launch: Shell[] = [];
      for (const { j, code } of jobs) {
        // The window is full: the oldest job is waited for before this one starts.
        if (j >= GUARD_JOBS) out.push(raw(`if [ -n "$keel_g${j - GUARD_JOBS}" ]; then wait "$keel_g${j - GUARD_JOBS}"; keel_s${j - GUARD_JOBS}=$?; fi\n`));
        const inCwd = p.cwd !== undefined ? [sh`cd -- ${p.cwd}`] : [];
        out.push(raw(`keel_g${j}= keel_s${j}=\n`));
        launch.push(sh`(\n${joinShell([...envExports(p), ...inCwd, runAs(p, code)])}\n) </dev/null >/dev/null 2>&1 & keel_g${raw(String(j))}=$!\n`);
      }
      out.push(p.cwd === undefined ? joinShell(launch, '') : sh`if (cd -- ${p.cwd}) 2>/dev/null; then\n${joinShell(launch, '')}fi\n`);
    }
    return joinShell(out, '');
  },

  probe(items) {
    const out: Shell[] = [];
    for (const { key, params: p, jobs } of guardJobs(items)) {
      if (!hasGuard(p)) continue;
      const lines: Shell[] = [];
      for (const [field, path] of [
        ['creates', p.creates],
        ['removes', p.removes],
      ] as const) {
        if (path === undefined) continue;
        // Relative to cwd, as the author's shell would see it there.
        const at = p.cwd !== undefined && !path.startsWith('/') ? `${p.cwd}/${path}` : path;
        lines.push(sh`if [ -e ${at} ]; then printf '%s\\t%s\\t1\\n' ${key} ${field}; else printf '%s\\t%s\\t0\\n' ${key} ${field}; fi\n`);
      }
      for (const { j, field } of jobs) {
        const [pid, status] = [raw(`"$keel_g${j}"`), raw(`keel_s${j}`)];
        lines.push(
          sh`if [ -n ${pid} ]; then [ -n "$${status}" ] || { wait ${pid}; ${status}=$?; }; printf '%s\\t%s\\t%s\\n' ${key} ${field} "$${status}"; fi\n`,
        );
      }
      out.push(
        p.cwd === undefined
          ? joinShell(lines, '')
          : sh`if (cd -- ${p.cwd}) 2>/dev/null; then\n${joinShell(lines, '')}else printf '%s\\tcwd\\tmissing\\n' ${key}; fi\n`,
      );
    }
    return joinShell(out, '');
  },

  parse(output, items) {
    const facts = parseFacts(output);
    return new Map(items.map((i) => [i.key, facts.get(i.key) ?? {}]));
  },

  decide(p, f): Decision {
    if (f.cwd !== 'missing') {
      if (p.creates !== undefined && f.creates === '1') return ok(`${p.creates} exists`);
      if (p.removes !== undefined && f.removes === '0') return ok(`${p.removes} does not exist`);
      if (p.unless !== undefined && f.unless === '0') return ok(`unless succeeded: ${firstLine(p.unless)}`);
      if (p.only_if !== undefined && f.only_if !== undefined && f.only_if !== '0') return ok(`only_if failed (exit ${f.only_if}): ${firstLine(p.only_if)}`);
    }
    const conds: Shell[] = [];
    if (p.creates !== undefined) conds.push(sh`[ ! -e ${p.creates} ]`);
    if (p.removes !== undefined) conds.push(sh`[ -e ${p.removes} ]`);
    if (p.unless !== undefined) conds.push(sh`! ${runAs(p, p.unless)} >/dev/null`);
    if (p.only_if !== undefined) conds.push(sh`${runAs(p, p.only_if)} >/dev/null`);
    const cmds: Shell[] = [...envExports(p)];
    if (p.cwd !== undefined) cmds.push(sh`cd -- ${p.cwd}`);
    cmds.push(
      conds.length
        ? sh`if ${joinShell(conds, ' && ')}; then ${runAs(p, p.run)}; else echo 'skipped: a guard changed since the probe' >&2; fi`
        : runAs(p, p.run),
    );
    if (p.settle !== undefined) cmds.push(settleWait(p, p.settle));
    const why = f.cwd === 'missing' ? ` (cwd ${p.cwd} does not exist yet)` : '';
    if (!hasGuard(p)) return change('not idempotent: no creates/removes/unless/only_if guard', cmds, { unverifiable: true });
    // only_if alone says when to run, not that running converged anything.
    const verifiable = p.creates !== undefined || p.removes !== undefined || p.unless !== undefined;
    return change(`run: ${firstLine(p.run)}${why}`, cmds, verifiable ? undefined : { unverifiable: true });
  },
};

/** Until the guard holds, or `secs` have passed: then fail, saying what was awaited and what
 *  the guard said last (a check that follows a start must wait for the service, not race it). */
function settleWait(p: CommandParams, secs: number): Shell {
  const holds: Shell[] = [];
  const what: string[] = [];
  if (p.creates !== undefined) {
    holds.push(sh`[ -e ${p.creates} ]`);
    what.push(`${p.creates} to exist`);
  }
  if (p.removes !== undefined) {
    holds.push(sh`[ ! -e ${p.removes} ]`);
    what.push(`${p.removes} to be gone`);
  }
  if (p.unless !== undefined) {
    holds.push(sh`keel_said=$( ${runAs(p, p.unless)} 2>&1 )`);
    what.push(`\`unless\` to succeed: ${firstLine(p.unless)}`);
  }
  const said = sh`printf 'ran, then waited %s s for %s; it did not hold:\n' ${String(secs)} ${what.join(' and ')} >&2`;
  const gaveUp = sh`${said}; printf '%s\n' "$keel_said" >&2; exit 1`;
  return joinShell([
    sh`keel_said=; keel_end=$(( $(date +%s) + ${raw(String(secs))} ))`,
    sh`until ${joinShell(holds, ' && ')}; do if [ "$(date +%s)" -ge "$keel_end" ]; then ${gaveUp}; fi; sleep 0.5; done`,
  ]);
}

/** The shell guards of each item, numbered across all items (probeStart and probe agree). */
function guardJobs(items: { key: string; params: CommandParams }[]) {
  let j = 0;
  return items.map(({ key, params }) => {
    const jobs: { j: number; field: 'unless' | 'only_if'; code: string }[] = [];
    if (params.unless !== undefined) jobs.push({ j: j++, field: 'unless', code: params.unless });
    if (params.only_if !== undefined) jobs.push({ j: j++, field: 'only_if', code: params.only_if });
    return { key, params, jobs };
  });
}

function hasGuard(p: CommandParams): boolean {
  return p.creates !== undefined || p.removes !== undefined || p.unless !== undefined || p.only_if !== undefined;
}

function envExports(p: CommandParams): Shell[] {
  return Object.entries(p.env ?? {}).map(([k, v]) => {
    if (!ENV_NAME.test(k)) throw new ConfigError(`command: env name "${k}" is not a valid variable name`);
    return sh`export ${raw(k)}=${v}`;
  });
}

/** The author's shell text, run as `user` if given, never as a process argument. */
function runAs(p: CommandParams, code: string): Shell {
  return p.user !== undefined ? sh`printf '%s\\n' ${code} | runuser -u ${p.user} -- sh -c 'eval "$(cat)"'` : sh`(set +e; eval ${code}) </dev/null`;
}

function firstLine(s: string): string {
  const l = s.trim().split('\n')[0] ?? '';
  return l.length > 60 ? l.slice(0, 57) + '...' : l;
}
