/**
 * End-to-end tests of what dbg does without a runtime word, on a private dockerd, a private
 * rootful Podman service and a private containerd at once. `dbg TARGET`: one target on each
 * engine, a name on two engines, an unknown name, an engine that is down, a terminal session
 * through tmux (rootless Podman's own socket is found in podman_test.ts). `dbg sessions` and
 * `dbg gc`: leftovers made on purpose on each engine, next to live sessions that must survive.
 */

import assert from "node:assert/strict";
import { containerdOrSkip, loadImagesInto, runCtrTarget } from "../helpers/containerd.ts";
import { dbgArgv, runDbg } from "../helpers/dbg.ts";
import { cleanEnv } from "../helpers/dockerd.ts";
import { dockerdOrSkip } from "../helpers/dockerd.ts";
import { loadTestImages, runTarget, sidecarsLeft } from "../helpers/images.ts";
import { podmanOrSkip } from "../helpers/podman.ts";
import { poll, shellQuote as q, Tty } from "../helpers/tty.ts";

const delay = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(() => r(v), ms));

/** The NAME column of `dbg sessions`. */
const names = (table: string) => table.trimEnd().split("\n").map((l) => l.split(/ +/)[1]);

/** `dbg ARGS` in the background, without a terminal, with `env` on top of a clean one. */
function spawnDbg(args: string[], env: Record<string, string>): Deno.ChildProcess {
  const [cmd, ...rest] = dbgArgv(args);
  return new Deno.Command(cmd, {
    args: rest,
    env: cleanEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test({
  name: "dbg TARGET, dbg sessions and dbg gc on Docker, Podman and containerd at once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const [d, p, c] = await Promise.all([
      dockerdOrSkip(),
      podmanOrSkip({ rootless: false }),
      containerdOrSkip(),
    ]);
    try {
      if (!d || !p || !c) return;
      // Every engine through the user's settings, as on a node that runs them all.
      const env = { DOCKER_HOST: d.host, CONTAINER_HOST: p.host, CONTAINERD_ADDRESS: c.address };
      const dbg = (args: string[], more: Record<string, string> = {}) =>
        runDbg(args, { env: { ...env, ...more } });
      await Promise.all([loadTestImages(d), loadTestImages(p), loadImagesInto(c, "default")]);
      await runTarget(d, { name: "on-docker" });
      await runTarget(d, { name: "twin" });
      await runTarget(p, { name: "on-podman" });
      await runTarget(p, { name: "twin" });
      await runCtrTarget(c, { namespace: "default", id: "on-containerd" });
      let neverStarted = 0;
      let nixLink = "";

      await t.step(
        "one target on each engine: found, named, and its exit code is dbg's",
        async () => {
          const where = { docker: d.host, podman: p.host, containerd: c.address };
          for (const [runtime, at] of Object.entries(where)) {
            const r = await dbg([
              `on-${runtime}`,
              "--",
              "sh",
              "-c",
              "grep ^ID= /etc/os-release; exit 3",
            ]);
            assert.equal(r.code, 3, r.stderr);
            assert.match(r.stdout, /^ID=dbgtest$/m);
            assert.ok(
              r.stderr.startsWith(`dbg: on-${runtime} is on ${runtime} (${at})\n`),
              r.stderr,
            );
            assert.match(r.stderr, /chroot mode/);
          }
          const quiet = await dbg(["-q", "on-podman", "--", "true"]);
          assert.equal(quiet.code, 0, quiet.stderr);
          assert.equal(quiet.stderr, "");
        },
      );

      await t.step("a name on two engines is an error with the command for each", async () => {
        const r = await dbg(["twin", "--", "ls", "-l"]);
        assert.equal(r.code, 125);
        assert.equal(
          r.stderr,
          `dbg: twin is on 2 engines: docker (${d.host}), podman (${p.host})\n` +
            "Hint: Name the runtime: dbg docker twin -- ls -l  or  dbg podman twin -- ls -l\n",
        );
      });

      await t.step("an unknown name is one line that says where dbg looked", async () => {
        const r = await dbg(["nowhere"]);
        assert.equal(r.code, 125);
        const [line, hint, ...rest] = r.stderr.trimEnd().split("\n");
        assert.equal(
          line,
          `dbg: No container nowhere on docker (${d.host}), podman (${p.host}), ` +
            `containerd (${c.address})`,
        );
        assert.equal(
          hint,
          "Hint: List containers with: docker ps, podman ps, ctr tasks ls. " +
            "Runtimes: docker, podman, containerd, k8s",
        );
        assert.deepEqual(rest, []);
      });

      await t.step("an engine that is down does not hide the others", async () => {
        const gone = { CONTAINER_HOST: "unix:///nonexistent/podman.sock" };
        const r = await dbg(["-q", "twin", "--", "true"], gone);
        assert.equal(r.code, 0, r.stderr);
        const none = await dbg(["nowhere"], gone);
        assert.match(none.stderr, /podman \(unix:\/\/\/nonexistent\/podman.sock: no such socket\)/);
      });

      await t.step("a terminal session through tmux, on the engine found", async () => {
        const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
        const argv = ["env", ...vars, ...dbgArgv(["on-containerd"])];
        const tty = await Tty.start(`${argv.map(q).join(" ")}; echo EXIT=$?; sleep 30`);
        try {
          await tty.waitFor(/^\[dbg\] \/app # ?$/m, 40_000);
          await tty.send("[ -t 0 ] && echo ON-A-TTY; exit 5", "Enter");
          const screen = await tty.waitFor(/^EXIT=5$/m, 20_000);
          assert.match(screen, /^dbg: on-containerd is on containerd \(/m);
          assert.match(screen, /^ON-A-TTY$/m);
        } finally {
          await tty.kill();
        }
      });

      await t.step(
        "sessions lists every engine's; gc removes the ended, never the live",
        async () => {
          // Live: a command on Docker (no TTY) and a shell on Podman (a TTY, through tmux).
          const live = spawnDbg(["-q", "on-docker", "--", "sleep", "300"], env);
          const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
          const tty = await Tty.start(
            `${["env", ...vars, ...dbgArgv(["on-podman"])].map(q).join(" ")}; sleep 30`,
          );
          try {
            await tty.waitFor(/^\[dbg\] \/app # ?$/m, 40_000);
            // Ended, left on purpose: --keep on each engine.
            for (const target of ["on-docker", "on-podman", "on-containerd"]) {
              const kept = await dbg(["-q", "--keep", target, "--", "true"]);
              assert.equal(kept.code, 0, kept.stderr);
            }
            // Created and never started: a dbg killed before it started its sidecar.
            neverStarted = Date.now();
            // A nix link whose session was killed before its trap ran, in a target no session
            // debugs now.
            const twin = Number(
              (await d.docker(["inspect", "-f", "{{.State.Pid}}", "twin"])).stdout,
            );
            nixLink = `/proc/${twin}/root/nix`;
            await Deno.symlink("/proc/4242/root/nix", nixLink);
            await d.docker([
              "create",
              "--label",
              "dbg.session=deadbeef",
              "--name",
              "dbg-deadbeef",
              "busybox:musl",
            ]);
            const listed = await poll(
              "both live sessions held",
              async () => {
                const r = await dbg(["sessions"]);
                const rows = r.stdout.split("\n").filter((l) => / running /.test(l));
                return rows.length === 2 && rows.every((l) => / yes$/.test(l)) ? r : null;
              },
              15_000,
            );
            const lines = listed.stdout.trimEnd().split("\n");
            assert.match(lines[0], /^RUNTIME +NAME +KIND +TARGET +AGE +STATE +ATTACHED$/);
            assert.equal(lines.length, 1 + 2 + 3 + 1, listed.stdout);
            assert.match(
              listed.stdout,
              /^docker +dbg-\w+ +sidecar +on-docker +\d+s +running +yes$/m,
            );
            assert.match(
              listed.stdout,
              /^podman +dbg-\w+ +sidecar +on-podman +\d+s +running +yes$/m,
            );
            assert.match(
              listed.stdout,
              /^containerd +dbg-\w+ +sidecar +on-containerd +\d+s +stopped +-$/m,
            );
            assert.match(listed.stdout, /^docker +dbg-deadbeef +sidecar +\S* +\d+s +created +-$/m);

            const dry = await dbg(["gc", "--dry-run"]);
            assert.equal(dry.code, 0, dry.stderr);
            const would = dry.stdout.trimEnd().split("\n");
            assert.ok(would.every((l) => l.startsWith("would remove ")), dry.stdout);
            for (const runtime of ["docker", "podman", "containerd"]) {
              assert.match(
                dry.stdout,
                new RegExp(`^would remove ${runtime} sidecar dbg-\\w+ of on-${runtime} \\(`, "m"),
              );
            }
            // Not yet: a dbg may still be setting it up.
            assert.doesNotMatch(dry.stdout, /dbg-deadbeef|nix link/);
            assert.match(dry.stdout, /^would remove containerd FIFO dir /m);
            assert.deepEqual(names((await dbg(["sessions"])).stdout), names(listed.stdout));

            const gc = await dbg(["gc"]);
            assert.equal(gc.code, 0, gc.stderr);
            const ageless = (t: string) => t.replace(/\(([a-z]+), \d+s old\)/g, "($1)");
            assert.equal(
              ageless(gc.stdout),
              ageless(dry.stdout.replaceAll("would remove ", "removed ")),
            );
            const after = (await dbg(["sessions"])).stdout.trimEnd().split("\n");
            assert.equal(after.length, 4, after.join("\n"));
            assert.equal(after.filter((l) => / running +yes$/.test(l)).length, 2, after.join("\n"));
            assert.equal(
              (await dbg(["gc"])).stdout.trim().startsWith("Nothing to remove on docker"),
              true,
            );

            // The live sessions went on: the shell answers, and the command still runs.
            await tty.send("echo STILL-HERE; exit 4", "Enter");
            await tty.waitFor(/^STILL-HERE$/m, 10_000);
            assert.equal(
              await Promise.race([live.status.then(() => "ended"), delay(500, "runs")]),
              "runs",
            );
          } finally {
            live.kill("SIGTERM");
            await live.status;
            await tty.kill();
          }
        },
      );

      await t.step("dbg attach joins a session from another terminal", async () => {
        const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
        const term = (args: string[]) =>
          Tty.start(
            `${["env", ...vars, ...dbgArgv(args)].map(q).join(" ")}; echo EXIT=$?; sleep 30`,
          );
        const first = await term(["on-docker"]);
        try {
          await first.waitFor(/^\[dbg\] \/app # ?$/m, 40_000);
          const name = (await dbg(["sessions"])).stdout.match(
            /^docker +(dbg-\w+) +sidecar +on-docker +\S+ +running/m,
          )?.[1];
          assert.ok(name);
          const second = await term(["attach", name]);
          try {
            await second.waitFor(new RegExp(`reattaching to ${name}`), 20_000);
            await second.send("echo joined-$((40+2))", "Enter");
            await second.waitFor(/joined-42/, 10_000);
            await first.waitFor(/joined-42/, 10_000);
            // A dbg's lifeline each: the session is held while either runs.
            await second.send("exit 4", "Enter");
            await second.waitFor(/^EXIT=4$/m, 15_000);
            await first.waitFor(/^EXIT=4$/m, 15_000);
          } finally {
            await second.kill();
          }
        } finally {
          await first.kill();
        }
        const none = await dbg(["attach", "dbg-nope"]);
        assert.equal(none.code, 125);
        assert.match(
          none.stderr,
          /^dbg: No dbg session dbg-nope\nHint: List the sessions with: dbg sessions\n$/,
        );
      });

      await t.step(
        "a sidecar that never started, and a nix link left, are gc's after a minute",
        async () => {
          await delay(Math.max(0, neverStarted + 61_000 - Date.now()), 0);
          const gc = await dbg(["gc"]);
          assert.deepEqual(
            gc.stdout.trim().split("\n").map((l) => l.replace(/\d+s old/, "N old")).sort(),
            [
              "removed docker nix link in twin (unused, N old)",
              "removed docker sidecar dbg-deadbeef (created, N old)",
            ],
          );
          await assert.rejects(Deno.lstat(nixLink), Deno.errors.NotFound);
        },
      );

      await t.step("nothing is left on any engine", async () => {
        assert.deepEqual(await sidecarsLeft(d), []);
        assert.deepEqual(await sidecarsLeft(p), []);
        const ctrs = (await c.ctr(["containers", "ls", "-q"], { namespace: "default" })).stdout;
        assert.deepEqual(ctrs.split("\n").filter((l) => l.startsWith("dbg-")), []);
      });
    } finally {
      await Promise.all([d?.stop(), p?.stop(), c?.stop()]);
    }
  },
});
