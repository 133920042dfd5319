// keel ssh: a login shell on a host, as the inventory's user (its key, jump hosts and
// known_hosts: keel's own connection), in the app's live release when there is one.
import { KeelError } from '../errors.js';
import type { HostPlan } from '../engine/plan.js';
import { sh } from '../shell/quote.js';
import type { HostLink } from '../ssh/link.js';
import { bridge, exitCodeOf, ptyOf, type Terminal } from './terminal.js';

/** `dir` may be undefined (a host without the app): the shell starts at home. */
export async function openShell(plan: HostPlan, dir: string | undefined, link: (plan: HostPlan) => Promise<HostLink>, terminal: Terminal): Promise<number> {
  if (!terminal.isTTY) throw new KeelError('keel ssh needs a terminal (stdin and stdout)');
  const enter = dir
    ? sh`cd -- ${dir} 2>/dev/null || echo ${`keel: cannot enter ${dir} as`} "$(id -un)" ${'(not there, or not allowed): you are in your home'} >&2; `
    : sh``;
  const l = await link(plan);
  try {
    const proc = await l.start(sh`${enter}exec "\${SHELL:-/bin/sh}" -l`, {
      become: false,
      pty: ptyOf(terminal),
      onStdout: (d) => terminal.write(d),
      onStderr: (d) => terminal.write(d),
    });
    return exitCodeOf(await bridge(terminal, proc));
  } finally {
    await l.close().catch(() => undefined);
  }
}
