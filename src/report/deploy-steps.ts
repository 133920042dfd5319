// A deploy's steps as they happen on each host: each step is printed and logged when it ends
// (not when its phase ends on every host), a step that runs long gets a heartbeat line, and
// with -v every line a step writes is printed as it comes, prefixed by the host and the step.
// Steps the hosts never reported (not run, a lost connection) come from the deploy's report.
import type { StepRecord } from '../deploy/run.js';
import type { StepEvent, StepOutcome, StepWatcher } from '../engine/steps.js';
import { Heartbeat } from './heartbeat.js';
import type { RunLog } from './log.js';
import { printable } from './one-line.js';
import type { Output } from './output.js';

export interface DeployStepsOptions {
  log: RunLog;
  /** Where a step is printed; nothing is printed without it (--output json). */
  print?: (host: string, step: StepRecord) => void;
  out: Output;
  /** Where its lines go (default: out.line; stderr when stdout holds a JSON report). */
  say?: (line: string) => void;
  /** -v: the steps' output lines, as they come. */
  verbose: boolean;
  heartbeatMs?: number;
}

export class DeploySteps implements StepWatcher {
  readonly output: boolean;
  private readonly heartbeat: Heartbeat;
  /** Steps shown live, by host, phase and name: the report's record of each is not shown again. */
  private readonly shown = new Map<string, number>();
  /** After an interrupt, what the abandoned hosts still send is not shown. */
  private closed = false;
  private readonly say: (line: string) => void;

  constructor(private readonly o: DeployStepsOptions) {
    this.output = o.verbose && !!o.print;
    const say = o.say ?? ((l: string) => o.out.line(l));
    this.say = say;
    this.heartbeat = new Heartbeat((l) => (o.print ? say(l) : undefined), o.heartbeatMs);
  }

  onEvent(host: string, phase: string, e: StepEvent): void {
    if (this.closed) return;
    if (e.type === 'begin') this.heartbeat.start(host, `${phase}/${e.key}`);
    else if (e.type === 'output') this.say(`${host}  ${phase}/${e.key} | ${printable(e.line)}`);
    else {
      this.heartbeat.stop(host);
      const key = `${host}\n${phase}\n${e.step.key}`;
      this.shown.set(key, (this.shown.get(key) ?? 0) + 1);
      this.show(host, record(phase, e.step));
    }
  }

  /** A step of the deploy's report (once its phase ended on the host): shown unless it was. */
  recorded(host: string, step: StepRecord): void {
    const key = `${host}\n${step.phase}\n${step.name}`;
    const live = this.shown.get(key) ?? 0;
    if (live > 0) this.shown.set(key, live - 1);
    else this.show(host, step);
  }

  close(): void {
    this.closed = true;
    this.heartbeat.close();
  }

  private show(host: string, step: StepRecord): void {
    this.o.log.write('step', { host, ...step });
    this.o.print?.(host, step);
  }
}

/** A step's outcome as the deploy records it (run.ts). */
function record(phase: string, st: StepOutcome): StepRecord {
  return {
    phase,
    name: st.key,
    status: st.status === 'changed' ? 'ok' : 'failed',
    ...(st.durationMs !== undefined && { durationMs: st.durationMs }),
    ...(st.code !== undefined && { code: st.code }),
    ...(st.output !== undefined && { output: st.output }),
  };
}
