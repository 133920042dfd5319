// keel exec: a command (the user's words, or a task of the inventory) in the live release of
// one or more hosts, as the app user with the app's environment (app-command.ts). Without a
// terminal, output comes line by line, secrets masked, each line with its host when there
// are several; with one (-i), the local terminal is joined to a remote one.
import { KeelError } from '../errors.js';
import { describe } from '../engine/pool.js';
import type { HostDeploy } from '../deploy/config.js';
import type { HostPlan } from '../engine/plan.js';
import type { HostLink, ProcessExit } from '../ssh/link.js';
import { appCommand, type AppRun } from './app-command.js';
import { LineSplitter, Tail } from './lines.js';
import { runStaged, stage } from './staged.js';
import { bridge, exitCodeOf, ptyOf, type Terminal } from './terminal.js';

export interface ExecRequest {
  hosts: HostDeploy[];
  run: AppRun;
  link: (plan: HostPlan) => Promise<HostLink>;
  mask: (s: string) => string;
  /** A line of output, masked, as it comes. */
  onLine?: (host: string, stream: 'stdout' | 'stderr', line: string) => void;
  /** Aborted (Ctrl-C): the commands get SIGINT; keel waits for them to end. */
  signal?: AbortSignal;
}

export interface HostExec {
  host: string;
  /** The command's exit code; null if it did not run or did not exit (see error). */
  code: number | null;
  signal?: string;
  /** Why it did not run or did not finish (connection, sudo, no release). */
  error?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Run the words on every host at once; one result per host, in order. */
export function execOnHosts(req: ExecRequest): Promise<HostExec[]> {
  return Promise.all(req.hosts.map((h) => execOne(req, h)));
}

async function execOne(req: ExecRequest, h: HostDeploy): Promise<HostExec> {
  const started = Date.now();
  const out = new Tail();
  const err = new Tail();
  const lines = (stream: 'stdout' | 'stderr', tail: Tail) =>
    new LineSplitter((l) => {
      const masked = req.mask(l);
      tail.add(masked);
      req.onLine?.(h.name, stream, masked);
    });
  const stdout = lines('stdout', out);
  const stderr = lines('stderr', err);
  let link: HostLink | undefined;
  const result = (x: Partial<HostExec>): HostExec => ({
    host: h.name,
    code: null,
    stdout: out.toString(),
    stderr: err.toString(),
    durationMs: Date.now() - started,
    ...x,
  });
  try {
    link = await req.link(h.plan);
    const path = await stage(link.session, appCommand(h, req.run));
    if (req.signal?.aborted) return result({ error: 'interrupted before it started (the staged script is removed within the hour)' });
    const proc = await link.start(runStaged(path), { become: true, onStdout: (d) => stdout.push(d), onStderr: (d) => stderr.push(d) });
    proc.end();
    const onAbort = () => proc.signal('INT');
    req.signal?.addEventListener('abort', onAbort);
    const x = await proc.exited.finally(() => req.signal?.removeEventListener('abort', onAbort));
    stdout.flush();
    stderr.flush();
    return result({ code: x.code, ...(x.signal ? { signal: x.signal } : {}), ...(x.lost ? { error: `connection lost: ${x.lost}` } : {}) });
  } catch (e) {
    stdout.flush();
    stderr.flush();
    return result({ error: req.mask(withoutHost(h.name, describe(e))) });
  } finally {
    await link?.close().catch(() => undefined);
  }
}

/** keel exec -i: one host, the local terminal joined to the command's. */
export async function execInteractive(
  h: HostDeploy,
  run: AppRun,
  link: (plan: HostPlan) => Promise<HostLink>,
  terminal: Terminal,
): Promise<{ exit: ProcessExit; code: number }> {
  if (!terminal.isTTY) throw new KeelError('keel exec -i needs a terminal (stdin and stdout): run it without -i in scripts and pipes');
  const l = await link(h.plan);
  try {
    const path = await stage(l.session, appCommand(h, run));
    const proc = await l.start(runStaged(path), {
      become: true,
      pty: ptyOf(terminal),
      onStdout: (d) => terminal.write(d),
      onStderr: (d) => terminal.write(d),
    });
    const exit = await bridge(terminal, proc);
    return { exit, code: exitCodeOf(exit) };
  } finally {
    await l.close().catch(() => undefined);
  }
}

/** Messages of host errors start with the host's name; results carry it apart. */
function withoutHost(host: string, message: string): string {
  return message.startsWith(`${host}: `) ? message.slice(host.length + 2) : message;
}
