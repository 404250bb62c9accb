/**
 * End-to-end tests of `dbg docker` on a terminal (driven through tmux) and of signals, against a
 * private dockerd: the interactive shell, resizes, Ctrl-C, exit codes, terminal restore, SIGTERM,
 * SIGHUP and SIGINT, leftovers in the target, and a daemon that dies mid-session.
 * Commands without a TTY, errors and modes are in docker_test.ts.
 */

import assert from "node:assert/strict";
import { delay } from "../../lib/signals.ts";
import { dbgArgv, spawnDbg } from "../helpers/dbg.ts";
import { dockerdOrSkip, pidAlive, type PrivateDockerd, startDockerd } from "../helpers/dockerd.ts";
import {
  BUSYBOX_IMAGE,
  diffTarget,
  loadTestImages,
  runTarget,
  sidecarsLeft,
} from "../helpers/images.ts";
import { pushImage, registryOrSkip } from "../helpers/registry.ts";
import { describeProcs, othersInPidNamespace } from "../helpers/pidns.ts";
import { assertCooked, EXITED, exitOf, poll, shellQuote as q, Tty } from "../helpers/tty.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PROMPT = /^\[dbg\] \/app #\s*$/m;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The argv of a dbg run against `host`. */
function dbgDockerArgv(host: string, args: string[]): string[] {
  return dbgArgv(["docker", "-H", host, ...args]);
}

/**
 * A shell line for tmux: runs dbg, then prints its exit code and the terminal's settings, and
 * stays a while so the screen can be read.
 */
function ttyScript(host: string, args: string[]): string {
  const dbg = dbgDockerArgv(host, args).map(q).join(" ");
  // The wrapper outlives a Ctrl-C to dbg's process group, as an interactive shell does (it is
  // not in that group); dbg gets the default action back, as every exec'd program does.
  return `sh -c ${q(`trap : INT; ${dbg}; echo EXIT=$?; stty -a; sleep 30`)}`;
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

/** Waits (up to `ms`) for process `pid` to end; returns the time it took. */
async function waitGone(pid: number, ms: number): Promise<number> {
  const started = Date.now();
  await poll(`process ${pid} to exit`, () => Promise.resolve(pidAlive(pid) ? null : true), ms);
  return Date.now() - started;
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

/** The processes left in `target`'s PID namespace besides its own, one line each. */
async function namespaceLeftovers(d: PrivateDockerd, target: string): Promise<string[]> {
  const pid = (await d.docker(["inspect", "-f", "{{.State.Pid}}", target])).stdout.trim();
  return describeProcs(await othersInPidNamespace(Number(pid)));
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
    const term = async (args: string[]) => {
      const tty = await Tty.start(ttyScript(d.host, args), { cols: 100, rows: 30, cwd: ROOT });
      ttys.push(tty);
      return tty;
    };
    let serial = 0;
    const marker = () => `dbg-sigtest-${++serial}`;
    // Zombies are attributed to the session after which they showed up, for the final check.
    const zombies = new Map<string, string>();
    const ended = async (label: string, name: string) => {
      assert.ok(!(await sidecarsLeft(d)).includes(name), `sidecar ${name} left (${label})`);
      for (const p of await namespaceLeftovers(d, "app")) {
        const pid = p.split(" ")[0];
        if (/ Z /.test(p) && !zombies.has(pid)) zombies.set(pid, `${p} after ${label}`);
      }
    };
    /** `sig` to dbg running `-- sleep 100` without a TTY: it exits `code` within 5 s, clean. */
    const stopsWithoutTty = async (sig: Deno.Signal, code: number) => {
      const name = marker();
      const child = spawnDbg(["docker", "-H", d.host, "--name", name, "app", "--", "sleep", "100"]);
      children.push(child);
      await sidecarRuns(d, name, "sleep 100");
      const started = Date.now();
      child.kill(sig);
      const out = await child.output();
      const took = Date.now() - started;
      assert.ok(took < 5_000, `${sig} without a TTY: dbg took ${took}ms to stop`);
      assert.equal(out.code, code, new TextDecoder().decode(out.stderr));
      await ended(`${sig} without a TTY`, name);
    };
    try {
      await loadTestImages(d);
      await runTarget(d, { name: "app" });
      const shellName = marker();
      let shell: Tty | undefined;

      await t.step(
        "interactive shell shows the target's rootfs and runs its binaries",
        async () => {
          shell = await term(["--name", shellName, "app"]);
          const first = await shell.waitFor(PROMPT, 30_000);
          const lines = first.split("\n");
          const banner = lines.findIndex((l) => l.startsWith("dbg: "));
          assert.ok(banner >= 0, `banner:\n${first}`);
          assert.match(lines[banner], /chroot mode/);
          assert.ok(banner < lines.findIndex((l) => PROMPT.test(l)), "banner before the prompt");
          await shell.send("ls /", "Enter");
          await shell.waitFor(/marker\.txt/);
          await shell.send("cat /etc/os-release", "Enter");
          await shell.waitFor(/^ID=dbgtest$/m);
          await shell.send("/usr/bin/hello", "Enter");
          await shell.waitFor(/^hello from target$/m);
        },
      );

      await t.step(
        "ps on a terminal: the target, the shell by its path, and one helper of dbg's",
        async () => {
          assert.ok(shell);
          await shell.send("ps -o pid,args; echo PS-DONE", "Enter");
          const out = await shell.waitFor(/^PS-DONE$/m);
          assert.match(out, /^\s*1 \/app\/target$/m);
          assert.match(out, /^\s*\d+ \/proc\/\d+\/root\/bin\/sh$/m, "the shell");
          // One helper of dbg's: the entry shell.
          const helpers = out.match(/^\s*\d+ \/bin\/sh -c eval "\$DBG_ENTRY" dbg-helper --$/gm);
          assert.equal(helpers?.length, 1, out);
          assert.doesNotMatch(out, /cd --|exec --|\$1|start-stop-daemon|sleep 2147483647/);
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
        await shell.send("sleep 100", "Enter");
        await sidecarRuns(d, shellName, "sleep 100");
        await shell.send("C-c");
        await shell.waitFor(/\^C\s*\n\[dbg\] \/app #\s*$/, 5_000);
        await shell.send("echo alive", "Enter");
        await shell.waitFor(/^alive$/m);
      });

      await t.step("exit 7 ends dbg with 7 and restores the terminal", async () => {
        assert.ok(shell);
        await shell.send("exit 7", "Enter");
        const screen = await shell.waitFor(EXITED);
        assert.equal(exitOf(screen), 7);
        assertCooked(screen);
        await shell.kill();
        await ended("exit 7", shellName);
      });

      await t.step("-q on a terminal: the prompt comes first, with no greeting", async () => {
        const name = marker();
        const tty = await term(["-q", "-e", "HUSHED=yes", "--name", name, "app"]);
        const screen = await tty.waitFor(PROMPT, 30_000);
        assert.equal(screen.split("\n")[0].trim(), "[dbg] /app #", screen);
        // The shell's output, the -e values, and no ENV of dbg's left behind.
        await tty.send("echo visible $HUSHED; echo $ENV.", "Enter");
        await tty.waitFor(/^visible yes\n\.$/m);
        await tty.send("exit 3", "Enter");
        assert.equal(exitOf(await tty.waitFor(EXITED)), 3);
        await tty.kill();
        await ended("-q shell", name);
      });

      await t.step("Ctrl-C during start-up: 130 at once, no sidecar, no stray input", async () => {
        // Ctrl-C at several moments of start-up. Before the terminal goes raw it is SIGINT to
        // dbg: 130, nothing started. After, it is a byte for the shell, which exits on request.
        for (const ms of [0, 40, 80, 120, 160, 240]) {
          const name = marker();
          const tty = await term(["--name", name, "app"]);
          await delay(ms);
          await tty.send("C-c");
          let screen = await tty.waitFor(
            new RegExp(`${EXITED.source}|${PROMPT.source}`, "m"),
            30_000,
          );
          if (!EXITED.test(screen)) {
            await tty.send("exit 130", "Enter");
            screen = await tty.waitFor(EXITED, 30_000);
          }
          assert.equal(exitOf(screen), 130, `Ctrl-C after ${ms}ms: ${screen}`);
          assertCooked(screen);
          // A terminal's reply (such as to a cursor-position query) typed into the outer shell.
          assert.doesNotMatch(screen.slice(screen.lastIndexOf("EXIT=")), /\d+R|\^\[/, `${ms}ms`);
          await tty.kill();
          await ended(`Ctrl-C ${ms}ms into start-up`, name);
        }
      });

      await t.step("Ctrl-C ends a command with 130, with -t and without", async () => {
        // A one-shot command gets a TTY only with -t, as with docker.
        for (const flags of [["-t"], []]) {
          const name = marker();
          const tty = await term([...flags, "--name", name, "app", "--", "sleep", "100"]);
          await sidecarRuns(d, name, "sleep 100");
          await tty.send("C-c");
          const screen = await tty.waitFor(EXITED);
          assert.equal(exitOf(screen), 130, `${flags}: ${screen}`);
          assertCooked(screen);
          await tty.kill();
          await ended(`Ctrl-C on ${flags} -- sleep 100`, name);
        }
      });

      await t.step("a command on a TTY passes its exit code through and sees TERM", async () => {
        const n1 = marker(), n2 = marker();
        const code = await term(["-q", "-t", "--name", n1, "app", "--", "sh", "-c", "exit 42"]);
        assert.equal(exitOf(await code.waitFor(EXITED, 30_000)), 42);
        await code.kill();
        await ended("exit 42", n1);
        const env = await term(["-q", "-t", "--name", n2, "app", "--", "sh", "-c", "echo T=$TERM"]);
        const screen = await env.waitFor(EXITED, 30_000);
        assert.match(screen, /^T=(screen|tmux)\S*$/m, "the local TERM, set by tmux, not xterm");
        assert.equal(exitOf(screen), 0);
        await env.kill();
        await ended("echo $TERM", n2);
      });

      for (const [sig, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
        await t.step(
          `${sig} stops dbg with ${code}, restores the terminal, removes the sidecar`,
          async () => {
            for (const cmd of [[], ["--", "sleep", "100"]]) {
              const label = `${sig} on a TTY (${cmd.length ? "-- sleep 100" : "interactive"})`;
              const name = marker();
              const tty = await term([
                "--name",
                name,
                ...(cmd.length ? ["-t"] : []),
                "app",
                ...cmd,
              ]);
              if (cmd.length) await sidecarRuns(d, name, "sleep 100");
              else await tty.waitFor(PROMPT, 30_000);
              const pid = await dbgPid(name);
              Deno.kill(pid, sig);
              const took = await waitGone(pid, 6_000);
              assert.ok(took < 5_000, `${label}: dbg took ${took}ms to stop`);
              const screen = await tty.waitFor(EXITED);
              assert.equal(exitOf(screen), code, label);
              assertCooked(screen);
              await tty.kill();
              await ended(label, name);
            }
            await stopsWithoutTty(sig, code);
          },
        );
      }

      await t.step("closing the terminal (tmux kill) stops dbg with 129", async () => {
        const name = marker();
        // In a temp dir: a late write after cleanup then fails instead of leaving a file.
        const dir = await Deno.makeTempDir({ prefix: "dbg-tty-exit-" });
        const file = `${dir}/code`;
        try {
          // The pane's shell dies of the hangup and the kernel sends SIGHUP to its process group;
          // an inner shell survives it only to write dbg's exit code down.
          const dbg = dbgDockerArgv(d.host, ["--name", name, "app"]).map(q).join(" ");
          const inner = `trap : HUP; ${dbg}; echo $? > ${q(file)}`;
          const tty = await Tty.start(`sh -c ${q(`sh -c ${q(inner)}; :`)}`, { cwd: ROOT });
          ttys.push(tty);
          await tty.waitFor(PROMPT, 30_000);
          const pid = await dbgPid(name);
          await tty.kill();
          const took = await waitGone(pid, 6_000);
          assert.ok(took < 5_000, `dbg took ${took}ms to stop`);
          const written = await poll("exit code file", async () => {
            const s = (await Deno.readTextFile(file).catch(() => "")).trim();
            return s ? s : null;
          }, 5_000);
          assert.equal(written, "129");
          await ended("terminal closed", name);
        } finally {
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        }
      });

      await t.step("SIGINT without a TTY is forwarded: dbg exits 130", async () => {
        await stopsWithoutTty("SIGINT", 130);
      });

      await t.step(
        "dbg killed with SIGKILL: the sidecar ends with its command and goes",
        async () => {
          const name = marker();
          const child = spawnDbg([
            "docker",
            "-H",
            d.host,
            "-q",
            "--name",
            name,
            "app",
            "--",
            "sleep",
            "2",
          ]);
          children.push(child);
          await sidecarRuns(d, name, "sleep 2");
          child.kill("SIGKILL");
          await child.status;
          // Nothing can clean up after SIGKILL but the engine: AutoRemove once the command ends.
          await poll(`sidecar ${name} to go`, async () => {
            const r = await d.docker(["ps", "-a", "-q", "--filter", `name=${name}`]);
            return r.stdout.trim() === "" ? true : null;
          }, 15_000);
          assert.equal(await diffTarget(d, "app"), "");
        },
      );

      await t.step("a pull on a terminal shows a progress line, then the session", async () => {
        const reg = await registryOrSkip();
        if (!reg) return;
        try {
          const ref = `${reg.addr}/tools/busybox:musl`;
          await pushImage(d, BUSYBOX_IMAGE, ref);
          const n = marker();
          const pull = await term(["--name", n, "--image", ref, "app", "--", "cat", "/marker.txt"]);
          const screen = await pull.waitFor(EXITED, 60_000);
          assert.match(screen, new RegExp(`Pulled ${ref.replaceAll(".", "\\.")}`));
          assert.match(screen, /target-rootfs-marker/);
          assert.equal(exitOf(screen), 0);
          await pull.kill();
          await ended("pull", n);
        } finally {
          await reg.stop();
        }
      });

      await t.step("the sessions leave no zombies, processes, files or sidecars", async () => {
        // Processes of the last session may still be exiting; zombies stay.
        let left = await namespaceLeftovers(d, "app");
        for (const end = Date.now() + 5_000; left.length && Date.now() < end;) {
          await sleep(200);
          left = await namespaceLeftovers(d, "app");
        }
        const why = [...zombies.values()].join("\n");
        assert.deepEqual(left, [], `processes left in the target's PID namespace:\n${why}`);
        assert.equal(await diffTarget(d, "app"), "", "docker diff app");
        assert.deepEqual(await sidecarsLeft(d), [], "sidecars left");
      });

      await t.step("a daemon killed mid-session ends dbg with 125 and a short error", async () => {
        const d2 = await startDockerd();
        let child: Deno.ChildProcess | undefined;
        let targetPid = 0;
        try {
          await loadTestImages(d2);
          await runTarget(d2, { name: "app2" });
          const inspect = await d2.docker(["inspect", "-f", "{{.State.Pid}}", "app2"]);
          targetPid = Number(inspect.stdout.trim());
          const name = marker();
          child = spawnDbg(["docker", "-H", d2.host, "--name", name, "app2", "--", "sleep", "100"]);
          await sidecarRuns(d2, name, "sleep 100");
          const daemon = Number((await Deno.readTextFile(`${d2.dir}/docker.pid`)).trim());
          const started = Date.now();
          Deno.kill(daemon, "SIGKILL");
          const out = await child.output();
          const took = Date.now() - started;
          const stderr = new TextDecoder().decode(out.stderr);
          assert.ok(took < 5_000, `dbg took ${took}ms to notice`);
          assert.equal(out.code, 125, stderr);
          // Each message is one `dbg:` line, maybe with a `Hint:` line: no stack, no dump.
          const lines = stderr.trimEnd().split("\n").filter((l) => !/^dbg: chroot mode/.test(l));
          for (const l of lines) assert.match(l, /^(dbg|Hint): \S/, `stderr:\n${stderr}`);
          const errors = lines.filter((l) => l.startsWith("dbg: "));
          assert.equal(errors.length, 1, `one error, cause first:\n${stderr}`);
          assert.match(errors[0], /Docker daemon/, `stderr:\n${stderr}`);
          assert.match(stderr, /\nHint: .*Could not remove sidecar dbg-/, `stderr:\n${stderr}`);
          await d2.stop();
          // Nothing of that engine may keep running, the containers' processes included.
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
