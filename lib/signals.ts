/**
 * Linux signal numbers by name, for exit codes (128+n) and for runtimes whose APIs take
 * numbers (containerd's Tasks.Kill). Deno names signals but does not number them.
 *
 * @module
 */

/** The numbers of the signals dbg handles or sends (Linux, x86_64 and arm64 alike). */
export const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGPIPE: 13,
  SIGTERM: 15,
  SIGCONT: 18,
  SIGSTOP: 19,
};

/** 128+n: the exit code of a process ended by signal `sig`. */
export function signalExit(sig: Deno.Signal): number {
  return 128 + SIGNAL_NUMBERS[sig]!;
}

/** A timer to race against; one left running is harmless, main.ts exits with Deno.exit. */
export function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(resolve, ms, undefined));
}
