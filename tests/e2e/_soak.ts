/**
 * Sessions stopped from outside, on every runtime. A terminal session stopped with SIGTERM hangs
 * up (dbg exits 143) and leaves no process in the target. The random-signal soak stops sessions
 * of several kinds (root, `-u` with a keeper, an unknown uid, baseline as the target's ids) with
 * SIGTERM, SIGHUP or SIGINT at a random moment, from before the sidecar exists to while the
 * command runs; afterwards nothing may be left: no sidecar, no process in the target's PID
 * namespace, no change in its files. Bounded: a fixed number of runs, each a second or two.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describeProcs, othersInPidNamespace } from "../helpers/pidns.ts";
import { poll, shellQuote as q, Tty } from "../helpers/tty.ts";

/** What the soak needs of a runtime's test. */
export interface SoakTarget {
  /** Starts `dbg <runtime> [connection flags] <args>` without a terminal. */
  spawn(args: string[]): Deno.ChildProcess;
  /** The target's name for dbg. */
  target: string;
  /** Host PID of the target's main process (its PID namespace is its own). */
  hostPid: number;
  /** Sidecars (and their resources) that are left; empty when clean. */
  leftovers(): Promise<string[]>;
  /** What was written into the target's files; empty when nothing. */
  written(): Promise<string>;
  /** Runs (default 16). */
  runs?: number;
}

const SIGNALS: Deno.Signal[] = ["SIGTERM", "SIGHUP", "SIGINT"];
const KINDS: string[][] = [
  ["--", "sleep", "30"],
  ["-u", "1000:1000", "--", "sleep", "30"],
  ["-u", "4242", "--", "sh", "-c", "sleep 30"],
  ["--profile", "baseline", "--", "sh", "-c", "sleep 30"],
];

/** Runs the soak as one step of `t`. */
export async function signalSoak(t: Deno.TestContext, o: SoakTarget): Promise<void> {
  await t.step("random signals at random moments leave nothing behind", async () => {
    const runs = o.runs ?? 16;
    for (let i = 0; i < runs; i++) {
      const kind = KINDS[i % KINDS.length];
      const signal = SIGNALS[Math.floor(Math.random() * SIGNALS.length)];
      // (Once the session runs: dbg opens its lifeline just after the start.)
      const after = 1500 + Math.floor(Math.random() * 1500);
      const child = o.spawn(["-q", o.target, ...kind]);
      await new Promise((r) => setTimeout(r, after));
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const out = await child.output();
      const what = `${kind.join(" ")}, ${signal} after ${after} ms`;
      const err = new TextDecoder().decode(out.stderr);
      assert.ok([129, 130, 143].includes(out.code), `${what}: exit ${out.code}: ${err}`);
    }
    let left = await o.leftovers();
    let procs = await othersInPidNamespace(o.hostPid);
    for (const end = Date.now() + 5_000; (left.length || procs.length) && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 200));
      left = await o.leftovers();
      procs = await othersInPidNamespace(o.hostPid);
    }
    assert.deepEqual(left, [], "sidecars left");
    assert.deepEqual(describeProcs(procs), [], "processes left in the target's PID namespace");
    assert.equal(await o.written(), "", "written into the target");
  });
}

/**
 * A step: a terminal session (`argv` runs dbg, which must show `prompt`) runs `sleep` as a
 * foreground job, dbg gets SIGTERM, and the session ends: dbg exits 143, and no process of it
 * is left in the PID namespace of host process `hostPid`.
 */
export async function terminalStop(
  t: Deno.TestContext,
  o: { argv: string[]; prompt: RegExp; hostPid: number },
): Promise<void> {
  await t.step("SIGTERM during a terminal session: a hangup, 143, nothing left", async () => {
    const tty = await Tty.start(
      `sh -c ${q(`${o.argv.map(q).join(" ")}; echo EXIT=$?; sleep 30`)}`,
      {},
    );
    try {
      await tty.waitFor(o.prompt, 40_000);
      await tty.send("sleep 100", "Enter");
      await new Promise((r) => setTimeout(r, 300));
      const pane = await tty.panePid();
      const dbg = Deno.readTextFileSync(`/proc/${pane}/task/${pane}/children`).trim().split(" ")[0];
      Deno.kill(Number(dbg), "SIGTERM");
      await tty.waitFor(/^EXIT=143$/m, 20_000);
      const left = await poll("the session's processes gone", async () => {
        const procs = await othersInPidNamespace(o.hostPid);
        return procs.length === 0 ? procs : null;
      }, 10_000).catch(async () => await othersInPidNamespace(o.hostPid));
      assert.deepEqual(describeProcs(left), []);
    } finally {
      await tty.kill();
    }
  });
}

/** What the SIGKILL soak needs of a runtime's test. */
export interface KillSoakTarget {
  /** Starts `dbg <runtime> [connection flags] <args>` without a terminal. */
  spawn(args: string[]): Deno.ChildProcess;
  /** The argv of `dbg <runtime> [connection flags] <args>`, for a terminal (tmux). */
  argv(args: string[]): string[];
  target: string;
  /** Host PID of the target's main process (its PID namespace is its own). */
  hostPid: number;
  /** What was written into the target's files; empty when nothing. */
  written(): Promise<string>;
  /** Runs (default 6: half with a terminal). */
  runs?: number;
  /**
   * Runs `dbg gc` on the engine, and returns what is left of dbg's there. Absent on Kubernetes:
   * no API removes an ephemeral container, which stays in its pod, ended.
   */
  gc?(): Promise<string[]>;
}

/** How long a session may outlive a dbg killed with SIGKILL (issue 12). */
const OUTLIVES_MS = 30_000;

/**
 * dbg is killed with SIGKILL at a random moment of a running session, with and without a
 * terminal: within 30 s no process of its sessions runs in the target's PID namespace (dbg's
 * lifeline hangs them up), and nothing was written into the target. What the engine keeps of
 * them (an ended Podman sidecar, a containerd container) `dbg gc` then removes.
 */
export async function killSoak(t: Deno.TestContext, o: KillSoakTarget): Promise<void> {
  await t.step(
    "SIGKILL during a session: within 30 s nothing runs, after gc nothing is left",
    async () => {
      const runs = o.runs ?? 6;
      const killed: string[] = [];
      for (let i = 0; i < runs; i++) {
        // (Once the session runs: dbg opens its lifeline just after the start.)
        const after = 1500 + Math.floor(Math.random() * 1500);
        const args = ["-q", o.target, ...(i % 2 ? [] : ["--", "sleep", "300"])];
        if (i % 2) {
          const tty = await Tty.start(`${o.argv(args).map(q).join(" ")}; sleep 60`, {});
          try {
            await new Promise((r) => setTimeout(r, after));
            const pane = await tty.panePid();
            const dbg = Deno.readTextFileSync(`/proc/${pane}/task/${pane}/children`).trim();
            if (dbg) Deno.kill(Number(dbg.split(" ")[0]), "SIGKILL");
            // A shell line waits in the terminal: it must never run in the target.
            await tty.send("touch /dbg-after-kill", "Enter");
          } finally {
            await tty.kill();
          }
        } else {
          const child = o.spawn(args);
          await new Promise((r) => setTimeout(r, after));
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
          await child.output();
        }
        killed.push(`${i % 2 ? "tty" : "no tty"} after ${after} ms`);
      }
      const t0 = Date.now();
      const procs = await poll("no process of the sessions left", async () => {
        const left = await othersInPidNamespace(o.hostPid);
        return left.length === 0 ? left : null;
      }, OUTLIVES_MS).catch(async () => await othersInPidNamespace(o.hostPid));
      assert.deepEqual(describeProcs(procs), [], `after ${Date.now() - t0} ms (${killed})`);
      assert.equal(await o.written(), "", "written into the target");
      if (o.gc) assert.deepEqual(await o.gc(), [], "left after dbg gc");
    },
  );
}
