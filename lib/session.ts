/**
 * The one lifecycle every runtime goes through, in docker/cli `runContainer` order:
 * create → attach → begin waiting → start → resize → pump → exit code → remove.
 *
 * @module
 */

import type { RuntimeAdapter, Sidecar } from "./adapter.ts";
import { DbgError } from "./errors.ts";
import type { DebugPlan } from "./plan.ts";
import { followResize } from "./resize.ts";
import { type ByteWriter, pumpInput, pumpOutput } from "./streams.ts";
import { type RawCapable, withRawMode } from "./terminal.ts";

/** The local side of a session. Production passes Deno's stdio; tests may pass fakes. */
export interface SessionIo {
  stdin: RawCapable & { readable: ReadableStream<Uint8Array> };
  stdout: ByteWriter;
  stderr: ByteWriter;
  /** Diagnostics for --debug. */
  debug: (msg: string) => void;
}

/** Signals that end the session: the sidecar is stopped and removed, dbg exits 128+n. */
const STOP_SIGNALS: Record<string, number> = { SIGTERM: 15, SIGHUP: 1 };

/**
 * Run a session from a plan and return the exit code: the command's, or 128+n when dbg itself
 * was stopped by signal n. The sidecar is removed on every path unless the plan says keep.
 */
export async function runSession(
  adapter: RuntimeAdapter,
  plan: DebugPlan,
  io: SessionIo,
): Promise<number> {
  const sidecar = await adapter.createSidecar(plan);
  io.debug(`created sidecar ${sidecar.name} (${sidecar.id})`);
  const stopped = Promise.withResolvers<number>();
  const listeners: Array<[Deno.Signal, () => void]> = [];
  const listen = (sig: Deno.Signal, fn: () => void) => {
    Deno.addSignalListener(sig, fn);
    listeners.push([sig, fn]);
  };
  for (const [sig, n] of Object.entries(STOP_SIGNALS)) {
    listen(sig as Deno.Signal, () => stopped.resolve(128 + n));
  }
  // Without a TTY, Ctrl-C reaches dbg, not the sidecar: forward it (docker's --sig-proxy).
  // With a TTY, raw mode turns Ctrl-C into a byte that the sidecar's terminal handles.
  if (!plan.sidecar.tty) {
    listen("SIGINT", () => {
      sidecar.signal("SIGINT").catch((e) => io.debug(`forwarding SIGINT: ${e}`));
    });
  }
  try {
    return await attachAndRun(sidecar, plan, io, stopped.promise);
  } finally {
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
    await cleanup(sidecar, plan, io);
  }
}

async function attachAndRun(
  sidecar: Sidecar,
  plan: DebugPlan,
  io: SessionIo,
  stopped: Promise<number>,
): Promise<number> {
  const att = await sidecar.attach();
  const inputDone = new AbortController();
  try {
    const waiter = await sidecar.beginWait();
    return await withRawMode(io.stdin, plan.sidecar.tty, async (restore) => {
      await sidecar.start();
      io.debug("sidecar started");
      const stopResize = plan.sidecar.tty
        ? await followResize((h, w) => sidecar.resize(h, w))
        : noop;
      try {
        if (plan.sidecar.stdin) {
          pumpInput(io.stdin.readable, att, {
            closeOnEof: !plan.sidecar.tty,
            signal: inputDone.signal,
          });
        }
        const output = pumpOutput(att.output, io);
        const finished = Promise.all([waiter.exit, output]).then(([code]) => ({ code }));
        const first = await Promise.race([finished, stopped.then((sig) => ({ sig }))]);
        if ("sig" in first) {
          restore();
          io.debug(`stopping the sidecar (dbg got signal ${first.sig - 128})`);
          await sidecar.stop(2).catch((e) => io.debug(`stop: ${e}`));
          return first.sig;
        }
        return first.code;
      } finally {
        stopResize();
      }
    });
  } finally {
    inputDone.abort();
    att.close();
  }
}

async function cleanup(sidecar: Sidecar, plan: DebugPlan, io: SessionIo): Promise<void> {
  if (plan.keep) {
    io.debug(`keeping sidecar ${sidecar.name} (--keep)`);
    return;
  }
  try {
    await sidecar.remove();
    io.debug(`removed sidecar ${sidecar.name}`);
  } catch (e) {
    // The engine may be gone (that error is already on its way up); say what is left.
    const left = new DbgError(`Could not remove sidecar ${sidecar.name}`, {
      hint: `Remove it when the engine is back (label dbg.session=${plan.runId})`,
      cause: e,
    });
    io.debug(`${left.message}: ${e}`);
    const enc = new TextEncoder();
    await io.stderr.write(enc.encode(`dbg: ${left.message}\nHint: ${left.hint}\n`)).catch(noop);
  }
}

function noop(): void {}
