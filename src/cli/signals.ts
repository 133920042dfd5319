// SIGINT and SIGTERM while keel works on hosts. The first one aborts the run's signal: the
// engine lets go of every host, says what each was doing, releases the locks, and the command
// returns (exit 130 or 143). A second one exits at once: the only exit outside cli/main.ts,
// because waiting is what the user just refused. `first` replaces what the first one says.
import type { Output } from '../report/output.js';

export interface SignalTrap {
  signal: AbortSignal;
  dispose(): void;
}

export function trapSignals(out: Output, given?: AbortSignal, first?: string): SignalTrap {
  if (given) return { signal: given, dispose: () => undefined };
  const ac = new AbortController();
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((name) => {
    const handler = () => {
      if (ac.signal.aborted) {
        out.warn(`${name} again: exiting now, without waiting for the hosts.`);
        process.exit(name === 'SIGINT' ? 130 : 143);
      }
      out.warn(
        first ?? `${name}: stopping (hosts in the middle of a step finish it on their own; ${name === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again exits at once)`,
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
  };
}
