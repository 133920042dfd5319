// Live progress per host. On a TTY, listr2 draws one line per host that updates in place;
// otherwise plain lines, one per event worth reading (changes, failures, host done).
import { Listr, type ListrTaskWrapper } from 'listr2';
import type { HostResult, ResourceResult } from '../engine/results.js';
import type { Output } from '../cli/output.js';

export interface Progress {
  phase(host: string, phase: string): void;
  result(host: string, r: ResourceResult): void;
  hostDone(r: HostResult): void;
  /** Resolves when the display has finished drawing. */
  close(): Promise<void>;
}

export function createProgress(out: Output, hosts: string[], check: boolean): Progress {
  if (out.isTTY && process.env.TERM !== 'dumb' && !process.env.CI) return ttyProgress(out, hosts, check);
  return plainProgress(out, check);
}

function plainProgress(out: Output, check: boolean): Progress {
  return {
    phase: () => undefined,
    result(host, r) {
      if (r.status === 'ok' || r.status === 'skipped') return;
      const verb = r.status === 'changed' ? (check ? (r.uncertain ? 'may change' : 'would change') : 'changed') : 'FAILED';
      out.line(`${host}  ${verb.padEnd(12)} ${r.id}  ${r.reason}`);
      if (r.status === 'failed' && r.output) out.line(indent(r.output));
    },
    hostDone(h) {
      if (h.unreachable) out.line(`${h.name}  UNREACHABLE  ${h.error ?? ''}`);
      else if (h.error) out.line(`${h.name}  FAILED       ${h.error}`);
    },
    close: async () => undefined,
  };
}

function ttyProgress(out: Output, hosts: string[], check: boolean): Progress {
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
  };
}

function indent(text: string): string {
  return text.replace(/\s+$/, '').split('\n').slice(-15).map((l) => `    | ${l}`).join('\n');
}
