/**
 * End-to-end tests of `dbg docker` on a terminal (driven through tmux) and of signals, against a
 * private dockerd: the interactive shell, resizes, Ctrl-C, exit codes, terminal restore, SIGTERM,
 * SIGHUP and SIGINT, leftovers in the target, and a daemon that dies mid-session.
 * Commands without a TTY, errors and modes are in docker_test.ts.
 */

import assert from "node:assert/strict";
import { cleanEnv, dockerdOrSkip, type PrivateDockerd, startDockerd } from "../helpers/dockerd.ts";
import { diffTarget, loadTestImages, runTarget, sidecarsLeft } from "../helpers/images.ts";
import { Tty } from "../helpers/tty.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const PROMPT = /^\[dbg\] \/app #\s*$/m;

/** Quotes one word for a POSIX shell. */
function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a non-null value; throws `what` on timeout. */
async function poll<T>(what: string, fn: () => Promise<T | null>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (true) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs}ms: ${what}`);
    await sleep(100);
  }
}

/** The argv of a dbg run against `host`. */
function dbgArgv(host: string, args: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--cached-only",
    MAIN,
    "docker",
    "-H",
    host,
    ...args,
  ];
}

/**
 * A shell line for tmux: runs dbg, then prints its exit code and the terminal's settings, and
 * stays a while so the screen can be read.
 */
function ttyScript(host: string, args: string[]): string {
  const dbg = dbgArgv(host, args).map(q).join(" ");
  return `sh -c ${q(`${dbg}; echo EXIT=$?; stty -a; sleep 30`)}`;
}

/** PID of the dbg (deno) process whose argv holds `marker` as one argument. */
function dbgPid(marker: string): Promise<number> {
  return poll(`dbg process with ${marker}`, async () => {
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const argv = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).split("\0");
        if (argv[0] === Deno.execPath() && argv.includes(marker)) return Number(e.name);
      } catch {
        // gone
      }
    }
    return null;
  });
}

/** Waits until sidecar `name` runs a process whose command line contains `cmd`. */
function sidecarRuns(d: PrivateDockerd, name: string, cmd: string): Promise<true> {
  return poll(`sidecar ${name} running ${cmd}`, async () => {
    const r = await d.docker(["top", name, "-o", "pid,args"], { check: false });
    return r.code === 0 && r.stdout.includes(cmd) ? true : null;
  });
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Waits (up to `ms`) for process `pid` to end; returns the time it took. */
async function waitGone(pid: number, ms: number): Promise<number> {
  const started = Date.now();
  await poll(`process ${pid} to exit`, () => Promise.resolve(alive(pid) ? null : true), ms);
  return Date.now() - started;
}

/** Asserts that the output after `EXIT=` shows a restored (cooked, echoing) terminal. */
function assertCooked(screen: string): void {
  const after = screen.slice(screen.lastIndexOf("EXIT="));
  assert.match(after, /(^|\s)icanon(\s|$)/m, `icanon after dbg:\n${after}`);
  assert.match(after, /(^|\s)echo(\s|$)/m, `echo after dbg:\n${after}`);
  assert.doesNotMatch(after, /-icanon|(^|\s)-echo(\s|$)/m, `raw mode left on:\n${after}`);
}

/** A dbg run spawned without a terminal (stdin /dev/null), to be signalled. */
function spawnDbg(host: string, args: string[]): Deno.ChildProcess {
  const [cmd, ...rest] = dbgArgv(host, args);
  return new Deno.Command(cmd, {
    args: rest,
    env: cleanEnv({ NO_COLOR: "1" }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

function killQuietly(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Kills a spawned dbg if it still runs and waits for it. */
async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // already exited
  }
  await child.status.catch(() => {});
}

/** Processes other than the target's main process in its PID namespace, with their state. */
async function namespaceLeftovers(d: PrivateDockerd, target: string): Promise<string[]> {
  const pid = (await d.docker(["inspect", "-f", "{{.State.Pid}}", target])).stdout.trim();
  const ns = await Deno.readLink(`/proc/${pid}/ns/pid`);
  const left: string[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || e.name === pid) continue;
    try {
      if (await Deno.readLink(`/proc/${e.name}/ns/pid`) !== ns) continue;
      const status = await Deno.readTextFile(`/proc/${e.name}/status`);
      const field = (k: string) => status.match(new RegExp(`^${k}:\\s*(.*)$`, "m"))?.[1] ?? "?";
      left.push(`${e.name} ${field("Name")} ${field("State")} ppid=${field("PPid")}`);
    } catch {
      // gone
    }
  }
  return left;
}

Deno.test({
  name: "dbg docker on a terminal and under signals (private dockerd, tmux)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const d = await dockerdOrSkip();
    if (!d) return;
    const ttys: Tty[] = [];
    const children: Deno.ChildProcess[] = [];
    const term = async (cmd: string, cols = 100, rows = 30) => {
      const tty = await Tty.start(cmd, { cols, rows, cwd: ROOT });
      ttys.push(tty);
      return tty;
    };
    const noSidecars = async () => assert.deepEqual(await sidecarsLeft(d), [], "sidecars left");
    let serial = 0;
    const marker = () => `dbg-sigtest-${++serial}`;
    try {
      await loadTestImages(d);
      await runTarget(d, { name: "app" });
      let shell: Tty | undefined;
      let shellName = "";

      await t.step(
        "interactive shell shows the target's rootfs and runs its binaries",
        async () => {
          shellName = marker();
          shell = await term(ttyScript(d.host, ["--name", shellName, "app"]));
          const first = await shell.waitFor(PROMPT, 30_000);
          const banner = first.split("\n").findIndex((l) => l.startsWith("dbg: "));
          assert.ok(banner >= 0, `banner:\n${first}`);
          assert.match(first.split("\n")[banner], /chroot mode/);
          assert.ok(banner < first.search(PROMPT), "banner before the prompt");
          await shell.send("ls /", "Enter");
          await shell.waitFor(/marker\.txt/);
          await shell.send("cat /etc/os-release", "Enter");
          await shell.waitFor(/^ID=dbgtest$/m);
          await shell.send("hello", "Enter");
          await shell.waitFor(/^hello from target$/m);
        },
      );

      await t.step("stty size follows the terminal and its resizes", async () => {
        assert.ok(shell);
        await shell.send("stty size", "Enter");
        await shell.waitFor(/^30 100$/m);
        await shell.resize(120, 40);
        // The resize reaches the sidecar asynchronously (SIGWINCH, then an API call): ask again
        // until the new size shows.
        for (let i = 0;; i++) {
          await shell.send("stty size", "Enter");
          try {
            await shell.waitFor(/^40 120$/m, 1_000);
            break;
          } catch (e) {
            if (i === 4) throw e;
          }
        }
      });

      await t.step("Ctrl-C interrupts the shell's command and the shell survives", async () => {
        assert.ok(shell);
        await shell.send("clear", "Enter");
        await shell.send("sleep 100", "Enter");
        await sidecarRuns(d, shellName, "sleep 100");
        await shell.send("C-c");
        await shell.waitFor(/\^C\s*\n\[dbg\] \/app # $/m, 5_000);
        await shell.send("echo alive", "Enter");
        await shell.waitFor(/^alive$/m);
      });

      await t.step("exit 7 ends dbg with 7 and restores the terminal", async () => {
        assert.ok(shell);
        await shell.send("exit 7", "Enter");
        const screen = await shell.waitFor(/^EXIT=\d+[\s\S]*echoke/m);
        assert.match(screen, /^EXIT=7$/m);
        assertCooked(screen);
        await shell.kill();
        await noSidecars();
      });

      await t.step("Ctrl-C ends a command on a TTY with 130", async () => {
        const name = marker();
        const tty = await term(ttyScript(d.host, ["--name", name, "app", "--", "sleep", "100"]));
        await sidecarRuns(d, name, "sleep 100");
        await tty.send("C-c");
        const screen = await tty.waitFor(/^EXIT=\d+[\s\S]*echoke/m);
        assert.match(screen, /^EXIT=130$/m);
        assertCooked(screen);
        await tty.kill();
        await noSidecars();
      });

      await t.step("a command on a TTY passes its exit code through and sees TERM", async () => {
        const code = await term(ttyScript(d.host, ["-q", "app", "--", "sh", "-c", "exit 42"]));
        assert.match(await code.waitFor(/^EXIT=\d+/m, 30_000), /^EXIT=42$/m);
        await code.kill();
        const env = await term(ttyScript(d.host, ["-q", "app", "--", "sh", "-c", "echo T=$TERM"]));
        const screen = await env.waitFor(/^EXIT=\d+/m, 30_000);
        assert.match(screen, /^T=\S+$/m);
        assert.match(screen, /^EXIT=0$/m);
        await env.kill();
        await noSidecars();
      });

      for (const [sig, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
        await t.step(
          `${sig} stops dbg with ${code}, restores the terminal, removes the sidecar`,
          async () => {
            // On a terminal: an interactive shell and a command.
            for (const cmd of [[], ["--", "sleep", "100"]]) {
              const name = marker();
              const tty = await term(ttyScript(d.host, ["--name", name, "app", ...cmd]));
              if (cmd.length) await sidecarRuns(d, name, "sleep 100");
              else await tty.waitFor(PROMPT, 30_000);
              const pid = await dbgPid(name);
              Deno.kill(pid, sig);
              const took = await waitGone(pid, 6_000);
              assert.ok(took < 5_000, `dbg took ${took}ms to stop`);
              const screen = await tty.waitFor(/^EXIT=\d+[\s\S]*echoke/m);
              assert.match(screen, new RegExp(`^EXIT=${code}$`, "m"), `${sig} ${cmd.join(" ")}`);
              assertCooked(screen);
              await tty.kill();
              await noSidecars();
            }
            // Without a terminal.
            const name = marker();
            const child = spawnDbg(d.host, ["--name", name, "app", "--", "sleep", "100"]);
            children.push(child);
            await sidecarRuns(d, name, "sleep 100");
            const started = Date.now();
            child.kill(sig);
            const out = await child.output();
            assert.ok(Date.now() - started < 5_000, `dbg took ${Date.now() - started}ms to stop`);
            assert.equal(out.code, code, new TextDecoder().decode(out.stderr));
            await noSidecars();
          },
        );
      }

      await t.step("closing the terminal (SIGHUP from tmux) stops dbg with 129", async () => {
        const name = marker();
        const file = await Deno.makeTempFile({ prefix: "dbg-tty-exit-" });
        try {
          // The wrapper catches SIGHUP only to survive it and write dbg's exit code down.
          const dbg = dbgArgv(d.host, ["--name", name, "app"]).map(q).join(" ");
          const script = `trap : HUP; ${dbg}; echo $? > ${q(file)}`;
          const tty = await term(`sh -c ${q(script)}`);
          await tty.waitFor(PROMPT, 30_000);
          const pid = await dbgPid(name);
          await tty.kill();
          const took = await waitGone(pid, 6_000);
          assert.ok(took < 5_000, `dbg took ${took}ms to stop`);
          const written = await poll("exit code file", async () => {
            const s = (await Deno.readTextFile(file)).trim();
            return s ? s : null;
          }, 5_000);
          assert.equal(written, "129");
          await noSidecars();
        } finally {
          await Deno.remove(file).catch(() => {});
        }
      });

      await t.step("SIGINT without a TTY is forwarded: dbg exits 130", async () => {
        const name = marker();
        const child = spawnDbg(d.host, ["--name", name, "app", "--", "sleep", "100"]);
        children.push(child);
        await sidecarRuns(d, name, "sleep 100");
        const started = Date.now();
        child.kill("SIGINT");
        const out = await child.output();
        assert.ok(Date.now() - started < 5_000, `dbg took ${Date.now() - started}ms to stop`);
        assert.equal(out.code, 130, new TextDecoder().decode(out.stderr));
        await noSidecars();
      });

      await t.step("the sessions leave no zombies, processes, files or sidecars", async () => {
        // Processes of the last session may still be exiting; zombies stay.
        let left = await namespaceLeftovers(d, "app");
        for (const end = Date.now() + 5_000; left.length && Date.now() < end;) {
          await sleep(200);
          left = await namespaceLeftovers(d, "app");
        }
        assert.deepEqual(left, [], "processes left in the target's PID namespace");
        assert.equal(await diffTarget(d, "app"), "", "docker diff app");
        await noSidecars();
      });

      await t.step("a daemon that dies mid-session ends dbg with 125 and one error", async () => {
        const d2 = await startDockerd();
        let child: Deno.ChildProcess | undefined;
        let targetPid = 0;
        try {
          await loadTestImages(d2);
          await runTarget(d2, { name: "app2" });
          targetPid = Number(
            (await d2.docker(["inspect", "-f", "{{.State.Pid}}", "app2"])).stdout.trim(),
          );
          const name = marker();
          child = spawnDbg(d2.host, ["--name", name, "app2", "--", "sleep", "100"]);
          await sidecarRuns(d2, name, "sleep 100");
          const daemon = Number((await Deno.readTextFile(`${d2.dir}/docker.pid`)).trim());
          const started = Date.now();
          Deno.kill(daemon, "SIGKILL");
          const out = await child.output();
          const took = Date.now() - started;
          const stderr = new TextDecoder().decode(out.stderr);
          assert.ok(took < 5_000, `dbg took ${took}ms to notice`);
          assert.equal(out.code, 125, stderr);
          const errors = stderr.split("\n").filter((l) => l.startsWith("dbg: ") && !/mode/.test(l));
          assert.ok(errors.length >= 1, `an error line:\n${stderr}`);
          assert.match(stderr, /docker daemon/i);
          assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
          assert.doesNotMatch(stderr, /Unexpected error/);
          await d2.stop();
          // Nothing of that engine may keep running: not its processes, not the containers'.
          await waitGone(targetPid, 10_000);
        } finally {
          if (child) await stopChild(child);
          await d2.stop();
          if (targetPid) killQuietly(targetPid); // should be gone; never leave it running
        }
      });
    } finally {
      for (const tty of ttys) await tty.kill();
      for (const c of children) await stopChild(c);
      await d.stop();
    }
  },
});
