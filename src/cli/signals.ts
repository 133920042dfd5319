// SIGINT and SIGTERM while keel works on hosts. The first one aborts the run's signal: the
// engine lets go of every host, says what each was doing, releases the locks, and the command
// returns (exit 130 or 143). A second one exits at once: the only exit outside cli/main.ts,
// because waiting is what the user just refused. `first` replaces what the first one says.
import type { Output } from '../report/output.js';

export interface SignalTrap {
  signal: AbortSignal;
  dispose(): void;
  /** What the first signal says from now on (a command that passes Ctrl-C on says so). */
  say(first: string): void;
}

export function trapSignals(out: Output, given?: AbortSignal, first?: string): SignalTrap {
  if (given) return { signal: given, dispose: () => undefined, say: () => undefined };
  const ac = new AbortController();
  let message = first;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((name) => {
    const handler = () => {
      if (ac.signal.aborted) {
        out.warn(`${name} again: exiting now, without waiting for the hosts.`);
        process.exit(name === 'SIGINT' ? 130 : 143);
      }
      out.warn(
        message ??
          `${name}: stopping (hosts in the middle of a step finish it on their own; ${name === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again exits at once)`,
      );
      ac.abort(name);
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  return {
    signal: ac.signal,
    dispose: () => {
      for (const [name, h] of handlers) process.removeListener(name, h);
    },
    say: (m) => {
      message = m;
    },
  };
}

/** The command's trap: the one its preparation installed (prepareFromOptions), or a new one.
 *  With `passedOn`, Ctrl-C is part of the command's work (logs -f stops, exec passes it to the
 *  hosts): it says `passedOn`, and the command's own exit code stands. */
export function commandTrap(ctx: { out: Output; signal?: AbortSignal; trap?: SignalTrap; signalPassedOn?: boolean }, passedOn?: string): SignalTrap {
  const trap = ctx.trap ?? trapSignals(ctx.out, ctx.signal, passedOn);
  if (passedOn) {
    trap.say(passedOn);
    ctx.signalPassedOn = true;
  }
  return trap;
}
