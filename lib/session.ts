/**
 * The one lifecycle every runtime goes through, in docker/cli `runContainer` order:
 * create → attach → begin waiting → start → resize → pump → exit code → remove.
 *
 * @module
 */

import type { Lifeline, PullProgress, RuntimeAdapter, Sidecar, TargetCopy } from "./adapter.ts";
import { DbgError, ImageNotPresent, LeftBehind } from "./errors.ts";
import {
  LIFELINE_BEAT,
  LIFELINE_BEAT_MS,
  LIFELINE_DELAY_MS,
  LIFELINE_HANGUP,
  LIFELINE_QUIT,
} from "./kill.ts";
import { type DebugPlan, shellJoin } from "./plan.ts";
import { printableLines } from "./printable.ts";
import { followResize } from "./resize.ts";
import { delay, signalExit } from "./signals.ts";
import { type ByteWriter, pumpInput, pumpOutput, writeAll } from "./streams.ts";
import { type RawCapable, withRawMode } from "./terminal.ts";

/** The local side of a session. Production passes Deno's stdio; tests may pass fakes. */
export interface SessionIo {
  stdin: RawCapable & { readable: ReadableStream<Uint8Array> };
  stdout: ByteWriter;
  stderr: ByteWriter;
  /** Diagnostics for --debug. */
  debug: (msg: string) => void;
  /** Pull progress (a bar on a TTY), if any. */
  progress?: PullProgress;
  /** Print the plan's banner once the sidecar exists (not with -q). */
  banner: boolean;
  /** Settles when dbg's own stderr is gone (a closed pipe): the session ends as on SIGPIPE. */
  lost?: Promise<void>;
}

/** Signals that end the session: the sidecar is stopped and removed, dbg exits 128+n. */
const STOP_SIGNALS: Deno.Signal[] = ["SIGHUP", "SIGQUIT", "SIGTERM"];

/**
 * Run a session from a plan and return the exit code: the command's, or 128+n when dbg itself
 * was stopped by signal n. The sidecar is removed on every path unless the plan says keep.
 */
export async function runSession(
  adapter: RuntimeAdapter,
  plan: DebugPlan,
  io: SessionIo,
): Promise<number> {
  // Signals are watched from the start: one that comes while the sidecar is being created
  // still ends the session through the same path, and removes what was created.
  const stop = Promise.withResolvers<number>();
  let sidecar: Sidecar | undefined;
  const listeners: Array<[Deno.Signal, () => void]> = [];
  const listen = (sig: Deno.Signal, fn: () => void) => {
    Deno.addSignalListener(sig, fn);
    listeners.push([sig, fn]);
  };
  for (const sig of STOP_SIGNALS) listen(sig, () => stop.resolve(signalExit(sig)));
  io.lost?.then(() => stop.resolve(signalExit("SIGPIPE")));
  // Without a TTY, Ctrl-C reaches dbg, not the sidecar: forward it (docker's --sig-proxy).
  // With a TTY, raw mode turns Ctrl-C into a byte for the sidecar's terminal, so a SIGINT
  // comes from elsewhere (kill -INT) and ends the session.
  let started = false;
  listen("SIGINT", () => {
    if (plan.sidecar.tty || !sidecar || !started) return stop.resolve(signalExit("SIGINT"));
    sidecar.signal("SIGINT").catch((e) => io.debug(`forwarding SIGINT: ${e}`));
  });
  let failure: unknown;
  let ended = false; // the sidecar exited on its own (not stopped, no error)
  let stopped = false;
  stop.promise.then(() => (stopped = true));
  let copy: TargetCopy | undefined;
  try {
    if (plan.copy) {
      copy = await createCopy(adapter, plan, plan.copy, io, stop);
      if (!copy) return await stop.promise;
    }
    const creating = createWithImage(adapter, plan, io);
    const made = await Promise.race([creating, stop.promise]);
    if (typeof made === "number") {
      // Stopped while pulling or creating: remove the sidecar if it comes soon (a create);
      // a pull is cancelled by the daemon when dbg exits and drops the connection.
      io.debug(`stopped before the session started (signal ${made - 128})`);
      const late = await Promise.race([creating.catch(() => undefined), delay(STOP_GRACE_MS)]);
      if (late) await late.remove().catch((e) => io.debug(`removing ${late.name}: ${e}`));
      return made;
    }
    sidecar = made;
    io.debug(`created sidecar ${sidecar.name} (${sidecar.id})`);
    const lines = [plan.banner, plan.exposure].filter(Boolean);
    if (io.banner && lines.length) await say(io, lines.join("\n"));
    const code = await attachAndRun(sidecar, plan, io, stop, () => (started = true));
    ended = !stopped;
    return code;
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
    const left = [
      sidecar && await cleanup(sidecar, plan, io, ended),
      copy && await removeKept("copy", plan.copy?.name ?? "", () => copy!.remove(), plan, io),
    ].filter((e): e is DbgError => !!e);
    // One report, cause first: what could not be removed joins the session's error as its hint.
    const what = left.map((e) => `${e.message}: ${e.hint}`);
    if (left.length && failure instanceof DbgError) {
      const hint = [failure.hint, ...what].filter(Boolean).join("; ");
      // deno-lint-ignore no-unsafe-finally
      throw new DbgError(failure.message, { hint, exitCode: failure.exitCode, cause: failure });
    }
    if (left.length && failure === undefined) {
      await say(io, left.map((e) => `dbg: ${e.message}\nHint: ${e.hint}`).join("\n"));
    }
  }
}

/**
 * Make the target's throwaway copy; undefined when the session was stopped meanwhile (the
 * adapter then removes what it made). The copy's banner comes first, as it exists first.
 */
async function createCopy(
  adapter: RuntimeAdapter,
  plan: DebugPlan,
  made: NonNullable<DebugPlan["copy"]>,
  io: SessionIo,
  stop: PromiseWithResolvers<number>,
): Promise<TargetCopy | undefined> {
  if (!adapter.createCopy) throw new DbgError(`dbg ${adapter.name} cannot debug a copy`);
  io.debug(`target entrypoint: ${shellJoin(made.entrypoint)}`);
  const stopping = new AbortController();
  stop.promise.then(() => stopping.abort());
  try {
    const copy = await adapter.createCopy(plan, stopping.signal);
    io.debug(`started copy ${made.name} of ${made.source.id}`);
    if (io.banner) await say(io, made.banner);
    return copy;
  } catch (e) {
    if (!stopping.signal.aborted) throw e;
    io.debug(`stopped while making the copy: ${e}`);
    return undefined;
  }
}

/** One line (or a few) on the local stderr, without control characters from outside. */
function say(io: SessionIo, text: string): Promise<void> {
  const line = new TextEncoder().encode(`${printableLines(text)}\n`);
  return writeAll(io.stderr, line).catch(() => {});
}

/**
 * Create the sidecar, pulling its image the way `docker run` does: `always` pulls first;
 * `missing` tries the create and pulls only when the engine lacks the image; `never` fails.
 */
async function createWithImage(
  adapter: RuntimeAdapter,
  plan: DebugPlan,
  io: SessionIo,
): Promise<Sidecar> {
  const ref = plan.image.ref;
  if (plan.pull === "always") {
    await adapter.ensureImage(ref, { pull: "always", progress: io.progress });
  }
  try {
    return await adapter.createSidecar(plan);
  } catch (e) {
    if (!(e instanceof ImageNotPresent)) throw e;
    // With `never`, the adapter checks again and says how to pull on its runtime.
    io.debug(`image ${ref} is not present${plan.pull === "never" ? "" : ": pulling"}`);
    const pull = plan.pull === "never" ? "never" : "always";
    await adapter.ensureImage(ref, { pull, progress: io.progress });
    return await adapter.createSidecar(plan);
  }
}

async function attachAndRun(
  sidecar: Sidecar,
  plan: DebugPlan,
  io: SessionIo,
  stop: PromiseWithResolvers<number>,
  onStarted: () => void,
): Promise<number> {
  // Attach and register for the exit status before start, so a short command loses neither
  // output nor status. The two are independent, so they run at once.
  const [attached, waited] = await Promise.allSettled([sidecar.attach(), sidecar.beginWait()]);
  if (attached.status === "rejected") throw attached.reason;
  const att = attached.value;
  const inputDone = new AbortController();
  let lifeline: LifelineHold | undefined;
  try {
    if (waited.status === "rejected") throw waited.reason;
    const waiter = waited.value;
    // A stop that came while attaching: the sidecar never starts (cleanup removes it).
    const early = await Promise.race([stop.promise, Promise.resolve(undefined)]);
    if (early !== undefined) return early;
    // The terminal goes raw once the sidecar has started: until then Ctrl-C stops dbg (a start
    // can take long: Kubernetes waits for the container), and the sidecar reads no input yet.
    const stopping = new AbortController();
    stop.promise.then(() => stopping.abort());
    try {
      await sidecar.start(stopping.signal);
    } catch (e) {
      if (!stopping.signal.aborted) throw e;
      io.debug("stopped while starting");
      return await stop.promise;
    }
    // A stop that came while the start was on its way: the session ends before it begins, with
    // no input sent and no output shown. The entry script still ends it, to reap what it began.
    const late = await Promise.race([stop.promise, Promise.resolve(undefined)]);
    if (late !== undefined) {
      io.debug("stopped while starting");
      await stopSidecar(sidecar, plan, io, waiter.exit);
      return late;
    }
    onStarted();
    io.debug("sidecar started");
    lifeline = holdLifeline(sidecar, io);
    return await withRawMode(io.stdin, plan.sidecar.tty, async (restore) => {
      const stopResize = plan.sidecar.tty ? followResize((h, w) => sidecar.resize(h, w)) : noop;
      try {
        if (plan.sidecar.stdin) {
          pumpInput(io.stdin.readable, att, {
            closeOnEof: !plan.sidecar.tty,
            signal: inputDone.signal,
          }).then((why) => {
            // A terminal in raw mode has no EOF key: its input ends only when it is gone. End
            // the session as on SIGHUP, even if no SIGHUP came (a parent that ignores it).
            if (why === "eof" && plan.sidecar.tty) stop.resolve(signalExit("SIGHUP"));
          });
        }
        const output = pumpOutput(att.output, io).then((how) => {
          // Nobody reads our output any more: end the session as a pipeline does (SIGPIPE).
          if (how === "local-closed") stop.resolve(signalExit("SIGPIPE"));
          // The sidecar's output ended with its command: the lifeline has no more to guard,
          // and containerd reports the exit only once every exec has ended.
          else lifeline?.release();
        });
        const finished = Promise.all([waiter.exit, output]).then(([code]) => ({ code }));
        const first = await Promise.race([finished, stop.promise.then((sig) => ({ sig }))]);
        if ("sig" in first) {
          inputDone.abort(); // the terminal is cooked again: nothing more goes to the sidecar
          restore();
          await stopSidecar(sidecar, plan, io, waiter.exit, lifeline);
          return first.sig;
        }
        return first.code;
      } finally {
        stopResize();
      }
    });
  } finally {
    inputDone.abort();
    lifeline?.release();
    att.close();
  }
}

/** The session's hold on its lifeline (lib/kill.ts). */
interface LifelineHold {
  /** Ask it to hang the session up; false if it is not open (no hangup comes of it). */
  hangUp(): boolean;
  /** Let it go without a hangup. */
  release(): void;
}

/**
 * Open the sidecar's lifeline and beat it until it is hung up or released. It is opened beside
 * the session, {@link LIFELINE_DELAY_MS} after its start: a short command neither waits for it
 * nor pays for its exec. One that opens too late is released at once, so that only one hangup
 * ever runs: two would signal each other's children, and the removal of the sidecar would
 * orphan those of one still running.
 */
function holdLifeline(sidecar: Sidecar, io: SessionIo): LifelineHold {
  const enc = new TextEncoder();
  let line: Lifeline | undefined;
  let done = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  const last = (l: Lifeline, word: string) =>
    l.write(enc.encode(word)).catch(() => {}).finally(() => l.close());
  const open = () =>
    sidecar.lifeline?.().then((l) => {
      if (done) return last(l, LIFELINE_QUIT);
      io.debug("lifeline open");
      line = l;
      timer = setInterval(() => {
        l.write(enc.encode(LIFELINE_BEAT)).catch((e) => io.debug(`lifeline beat: ${e}`));
      }, LIFELINE_BEAT_MS);
    }).catch((e) => io.debug(`lifeline: ${e}`));
  const opening = setTimeout(open, LIFELINE_DELAY_MS);
  const end = (): Lifeline | undefined => {
    const held = done ? undefined : line;
    done = true;
    clearTimeout(opening);
    clearInterval(timer);
    return held;
  };
  return {
    hangUp: () => {
      const l = end();
      // Left open: the lifeline ends by itself once the session is hung up. (Closed at once,
      // Kubernetes would kill the exec mid-hangup, and its children would be orphans.)
      l?.write(enc.encode(LIFELINE_HANGUP)).catch(() => {});
      return l !== undefined;
    },
    release: () => {
      const l = end();
      if (l) last(l, LIFELINE_QUIT);
    },
  };
}

/**
 * Ask the entry script to end the session, so that it reaps what it started (anything left
 * would become a zombie in the target's PID namespace), and give it a moment. Without a TTY
 * its trap handles SIGTERM at once. With a TTY it waits on a foreground job and cannot run
 * traps, so the whole sidecar is hung up, as by a closed terminal (see lib/entry.sh): by the
 * lifeline where it is open, else by an exec. Removal kills whatever is left.
 */
async function stopSidecar(
  sidecar: Sidecar,
  plan: DebugPlan,
  io: SessionIo,
  exit: Promise<number>,
  lifeline?: LifelineHold,
): Promise<void> {
  io.debug(`stopping the sidecar with ${plan.sidecar.tty ? "a hangup" : "SIGTERM"}`);
  const exited = exit.then(() => true, () => true);
  try {
    if (!plan.sidecar.tty) {
      lifeline?.release();
      await sidecar.signal("SIGTERM");
    } else if (!lifeline?.hangUp()) await sidecar.hangUp();
    await Promise.race([exited, delay(STOP_GRACE_MS + (sidecar.exitLagMs ?? 0))]);
  } catch (e) {
    io.debug(`stopping: ${e}`);
  }
}

/** How long the entry script gets to end a session before the sidecar is removed by force. */
const STOP_GRACE_MS = 3000;

/** Remove the sidecar unless kept; returns what could not be removed, for the report. */
function cleanup(
  sidecar: Sidecar,
  plan: DebugPlan,
  io: SessionIo,
  ended: boolean,
): Promise<DbgError | undefined> {
  if (ended && sidecar.removesItself && !plan.keep) {
    io.debug(`sidecar ${sidecar.name} exited; the engine removes it`);
    return Promise.resolve(undefined);
  }
  return removeKept("sidecar", sidecar.name, () => sidecar.remove(), plan, io);
}

/** Remove what the session made (the sidecar, a copy) unless kept; returns what is left. */
async function removeKept(
  what: string,
  name: string,
  remove: () => Promise<void>,
  plan: DebugPlan,
  io: SessionIo,
): Promise<DbgError | undefined> {
  if (plan.keep) {
    io.debug(`keeping ${what} ${name} (--keep)`);
    return undefined;
  }
  try {
    await remove();
    io.debug(`removed ${what} ${name}`);
    return undefined;
  } catch (e) {
    io.debug(`removing ${what} ${name}: ${e}`);
    if (e instanceof LeftBehind) return e; // the adapter says what is left and what to do
    return new DbgError(`Could not remove ${what} ${name}`, {
      hint: `remove it once the engine is back (label dbg.session=${plan.runId})`,
      cause: e,
    });
  }
}

function noop(): void {}
