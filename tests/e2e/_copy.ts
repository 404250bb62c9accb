/**
 * Steps every runtime's copy tests share: a session in a copy on a terminal (its exit code, and
 * SIGTERM), signals at random moments while the copy is made or used, and the copy's network.
 * After each, the runtime's `clean` checks that nothing of the copy is left and that the
 * original is as it was.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ShResult } from "../helpers/dockerd.ts";
import { shellQuote as q, Tty } from "../helpers/tty.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** What the steps need of a runtime's test. */
export interface CopyRuntime {
  /** Runs `dbg <runtime> [connection flags] <args>` without a terminal. */
  dbg(args: string[]): Promise<ShResult>;
  /** The argv of that run, for a terminal. */
  argv(args: string[]): string[];
  /** Starts it without a terminal. */
  spawn(args: string[]): Deno.ChildProcess;
  /** Asserts that nothing of a copy is left and that the originals are as they were. */
  clean(): Promise<void>;
  /** The arguments that name the target (and ask for a copy where that takes a flag). */
  target: string[];
  /** How long a session may take to show its prompt (ms). */
  promptMs: number;
}

const PROMPT = /^\[dbg\] \/app #\s*$/m;

/** Terminal sessions in a copy: an exit code, then SIGTERM during a foreground job. */
export async function copyTerminalStep(t: Deno.TestContext, r: CopyRuntime): Promise<void> {
  await t.step("on a terminal: the shell in the copy, its exit code, and SIGTERM", async () => {
    const line = `${r.argv(r.target).map(q).join(" ")}; echo EXIT=$?; sleep 60`;
    const ttys: Tty[] = [];
    const start = async () => {
      const tty = await Tty.start(`sh -c ${q(line)}`, { cwd: ROOT });
      ttys.push(tty);
      return tty;
    };
    try {
      const tty = await start();
      await tty.waitFor(PROMPT, r.promptMs);
      await tty.send("exit 5", "Enter");
      await tty.waitFor(/^EXIT=5$/m, 30_000);
      await r.clean();

      const stopped = await start();
      await stopped.waitFor(PROMPT, r.promptMs);
      await stopped.send("sleep 100", "Enter");
      await new Promise((res) => setTimeout(res, 300));
      const pane = await stopped.panePid();
      const child = Deno.readTextFileSync(`/proc/${pane}/task/${pane}/children`).trim();
      Deno.kill(Number(child.split(" ")[0]), "SIGTERM");
      await stopped.waitFor(/^EXIT=143$/m, 30_000);
      await r.clean();
    } finally {
      for (const tty of ttys) await tty.kill();
    }
  });
}

/** SIGTERM, SIGHUP or SIGINT at a random moment, from start-up to a running command. */
export async function copySignalStep(
  t: Deno.TestContext,
  r: CopyRuntime,
  o: { runs: number; withinMs: number },
): Promise<void> {
  await t.step("signals at random moments, while the copy is made or used", async () => {
    for (let i = 0; i < o.runs; i++) {
      const signal = (["SIGTERM", "SIGHUP", "SIGINT"] as const)[i % 3];
      const after = Math.floor(Math.random() * o.withinMs);
      const child = r.spawn(["-q", ...r.target, "--", "sleep", "30"]);
      await new Promise((res) => setTimeout(res, after));
      try {
        child.kill(signal);
      } catch { /* gone */ }
      const out = await child.output();
      const err = new TextDecoder().decode(out.stderr);
      assert.ok(
        [129, 130, 143].includes(out.code),
        `${signal} after ${after} ms: ${out.code} ${err}`,
      );
    }
    await r.clean();
  });
}

/** A copy has its own network unless asked; `--network host` gives it the host's. */
export async function copyNetworkStep(t: Deno.TestContext, r: CopyRuntime): Promise<void> {
  await t.step("no network unless asked: --network host", async () => {
    const mine = Deno.readLinkSync("/proc/self/ns/net");
    const net = ["sh", "-c", "readlink /proc/self/ns/net"];
    const none = await r.dbg(["-q", ...r.target, "--", ...net]);
    assert.notEqual(none.stdout.trim(), mine, none.stderr);
    const host = await r.dbg(["-q", "--network", "host", ...r.target, "--", ...net]);
    assert.equal(host.stdout.trim(), mine, host.stderr);
    await r.clean();
  });
}
