import type { Output } from '../report/output.js';
import type { SignalTrap } from './signals.js';

/** What every command gets: where the project is and where output goes. Commands return an
 *  exit code (0 ok, 2 hosts failed) or throw a typed error; they never call process.exit. */
export interface CliContext {
  out: Output;
  /** Project root: the directory holding inventories/, roles/, secrets/ (cwd or $KEEL_ROOT). */
  root: string;
  /** True when stdin is a terminal (prompts allowed). */
  interactive: boolean;
  /** Tests may pass their own; otherwise commands that act on hosts trap SIGINT/SIGTERM (from
   *  the start of their preparation on: prepareFromOptions). */
  signal?: AbortSignal;
  /** The trap prepareFromOptions installed (signals.ts: commandTrap). */
  trap?: SignalTrap;
  /** Ctrl-C is part of the command's work (logs -f, exec): not an interruption of it. */
  signalPassedOn?: boolean;
  /** Run when the command ends (main): the signal trap's removal. */
  cleanups?: (() => void)[];
}

export type CommandResult = number | void;

/** Wraps a command's action so that its result becomes the CLI's exit code. */
export type Runner = (fn: (...args: any[]) => Promise<CommandResult>) => (...args: any[]) => Promise<void>;
