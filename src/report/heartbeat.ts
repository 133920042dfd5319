// A CI log is never silent for long: while a host is busy with one thing (a step, a phase), a
// line every `everyMs` says what and for how long, so a step that hangs names itself.
import { oneLine } from './one-line.js';

export class Heartbeat {
  private readonly busy = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly say: (line: string) => void,
    private readonly everyMs = 15_000,
  ) {}

  /** `host` is busy with `what` from now on (a new clock). */
  start(host: string, what: string): void {
    this.stop(host);
    const since = Date.now();
    const timer = setInterval(() => {
      this.say(`${host}  still running ${oneLine(what, 120)} (${Math.round((Date.now() - since) / 1000)} s)`);
    }, this.everyMs);
    // A heartbeat never keeps keel running.
    timer.unref();
    this.busy.set(host, timer);
  }

  stop(host: string): void {
    clearInterval(this.busy.get(host));
    this.busy.delete(host);
  }

  close(): void {
    for (const host of [...this.busy.keys()]) this.stop(host);
  }
}
