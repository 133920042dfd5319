// The terminal display of live progress: one listr2 line per host, updated in place, with the
// counts of its resources by status. Loaded by progress.ts only when stdout is a terminal.
import { Listr, type ListrTaskWrapper } from 'listr2';
import type { HostResult } from '../engine/results.js';
import type { Output } from './output.js';
import type { Progress } from './progress.js';

export function ttyProgress(out: Output, hosts: string[], check: boolean): Progress {
  type Entry = { task?: ListrTaskWrapper<unknown, any, any>; done: (r: HostResult) => void; promise: Promise<HostResult> };
  const entries = new Map<string, Entry>();
  // Status per resource id: a resource can be reported ok, then changed after a barrier.
  const counts = new Map<string, { statuses: Map<string, string>; phase: string }>();
  for (const h of hosts) {
    let done!: (r: HostResult) => void;
    const promise = new Promise<HostResult>((res) => (done = res));
    entries.set(h, { done, promise });
    counts.set(h, { statuses: new Map(), phase: 'waiting' });
  }
  const title = (h: string) => {
    const c = counts.get(h)!;
    const n = (status: string) => [...c.statuses.values()].filter((x) => x === status).length;
    return `${h}: ${c.phase}  ok=${n('ok')} ${check ? 'would change' : 'changed'}=${n('changed')} failed=${n('failed')}`;
  };
  const list = new Listr(
    hosts.map((h) => ({
      title: h,
      task: async (_ctx: unknown, task: ListrTaskWrapper<unknown, any, any>) => {
        entries.get(h)!.task = task;
        task.title = title(h);
        const r = await entries.get(h)!.promise;
        counts.get(h)!.phase = r.unreachable ? 'unreachable' : r.error || r.failed ? 'failed' : 'done';
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
  return {
    phase(h, p) {
      counts.get(h)!.phase = p;
      update(h);
    },
    result(h, r) {
      counts.get(h)!.statuses.set(r.id, r.status);
      update(h);
    },
    hostDone(r) {
      entries.get(r.name)?.done(r);
    },
    async close() {
      await running;
    },
    // Host errors are the lines listr2 shows; failed resources only as a count.
    shows: { hostErrors: true, resourceFailures: false },
  };
}
