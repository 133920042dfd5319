// The terminal display of live progress: one listr2 line per host, updated in place, with the
// step running and for how long, how many resources are done, and the counts of its resources
// by status ("web1: apply 12/46 nginx/package:nginx 34 s  ok=10 changed=2 failed=0").
// Loaded by progress.ts only when stdout is a terminal.
import { Listr, type ListrTaskWrapper } from 'listr2';
import type { HostResult } from '../engine/results.js';
import { oneLine } from './one-line.js';
import type { Output } from './output.js';
import type { Progress } from './progress.js';

export function ttyProgress(out: Output, hosts: string[], check: boolean): Progress {
  type Entry = { task?: ListrTaskWrapper<unknown, any, any>; done: (r: HostResult) => void; promise: Promise<HostResult> };
  const entries = new Map<string, Entry>();
  const counts = new Map<string, HostLine>();
  for (const h of hosts) {
    let done!: (r: HostResult) => void;
    const promise = new Promise<HostResult>((res) => (done = res));
    entries.set(h, { done, promise });
    counts.set(h, { statuses: new Map(), phase: 'waiting' });
  }
  const title = (h: string) => hostTitle(h, counts.get(h)!, check);
  const list = new Listr(
    hosts.map((h) => ({
      title: h,
      task: async (_ctx: unknown, task: ListrTaskWrapper<unknown, any, any>) => {
        entries.get(h)!.task = task;
        task.title = title(h);
        const r = await entries.get(h)!.promise;
        counts.get(h)!.phase = r.unreachable ? 'unreachable' : r.error || r.failed ? 'failed' : 'done';
        counts.get(h)!.step = undefined;
        task.title = title(h);
        if (r.unreachable || r.error || r.failed) throw new Error(out.redactor.mask(r.error ?? `${r.failed} resource(s) failed`));
      },
    })),
    { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false } },
  );
  const running = list.run().catch(() => undefined);
  const update = (h: string) => {
    const e = entries.get(h);
    if (e?.task) e.task.title = out.redactor.mask(title(h));
  };
  // The seconds of the steps running go on counting.
  const ticker = setInterval(() => {
    for (const [h, c] of counts) if (c.step) update(h);
  }, 1000);
  ticker.unref();
  return {
    phase(h, p) {
      counts.get(h)!.phase = p;
      update(h);
    },
    result(h, r) {
      counts.get(h)!.statuses.set(r.id, r.status);
      update(h);
    },
    step(h, s) {
      if (s.state === 'output') return;
      const c = counts.get(h)!;
      c.done = { n: s.done, of: s.total };
      c.step = s.state === 'running' ? { id: s.id, since: Date.now() } : undefined;
      update(h);
    },
    hostDone(r) {
      entries.get(r.name)?.done(r);
    },
    async close() {
      await running;
      clearInterval(ticker);
    },
    // Host errors are the lines listr2 shows; failed resources only as a count. Output lines
    // would tear the display: not streamed.
    shows: { hostErrors: true, resourceFailures: false, output: false },
  };
}

/** What the line of one host shows. */
export interface HostLine {
  /** Status per resource id: a resource can be reported ok, then changed after a barrier. */
  statuses: Map<string, string>;
  phase: string;
  /** The step running, since when. */
  step?: { id: string; since: number };
  /** Resources done, of all the host's. */
  done?: { n: number; of: number };
}

export function hostTitle(h: string, c: HostLine, check: boolean, now = Date.now()): string {
  const n = (status: string) => [...c.statuses.values()].filter((x) => x === status).length;
  const done = c.done ? ` ${c.done.n}/${c.done.of}` : '';
  const step = c.step ? ` ${oneLine(c.step.id, 60)} ${Math.floor((now - c.step.since) / 1000)} s` : '';
  return `${h}: ${c.phase}${done}${step}  ok=${n('ok')} ${check ? 'would change' : 'changed'}=${n('changed')} failed=${n('failed')}`;
}
