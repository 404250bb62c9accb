/**
 * End-to-end tests of `dbg podman` against private Podman services, rootful (as root) and
 * rootless (as an unprivileged user, whose socket dbg finds by itself): the Docker adapter's
 * scenarios on Podman's Docker-compatible API, the access rules, a terminal session through
 * tmux, and the signal and SIGKILL soaks.
 */

import assert from "node:assert/strict";
import { dbgAs, runDbg } from "../helpers/dbg.ts";
import { diffTarget, loadTestImages, runTarget, sidecarsLeft } from "../helpers/images.ts";
import { podmanOrSkip, type PrivatePodman } from "../helpers/podman.ts";
import { shellQuote as q, Tty } from "../helpers/tty.ts";
import { accessScenarios, APP_TARGETS } from "./_access.ts";
import { killSoak, signalSoak } from "./_soak.ts";

for (const rootless of [false, true]) {
  Deno.test({
    name: `dbg podman end to end (private ${rootless ? "rootless" : "rootful"} podman)`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const p = await podmanOrSkip({ rootless });
      if (!p) return;
      try {
        await scenarios(t, p);
      } finally {
        await p.stop();
      }
    },
  });
}

async function scenarios(t: Deno.TestContext, p: PrivatePodman): Promise<void> {
  // Rootless: dbg runs as the user and finds the socket in its XDG_RUNTIME_DIR. Rootful: dbg
  // runs as root and is told the socket through CONTAINER_HOST, as podman-remote is.
  const as = await dbgAs(
    p.user ? { user: p.user } : { uid: 0 },
    p.user ? { XDG_RUNTIME_DIR: p.env.XDG_RUNTIME_DIR } : { CONTAINER_HOST: p.host },
  );
  const dbg = (args: string[], stdin?: string) => as.run(["podman", ...args], { stdin });
  await loadTestImages(p);
  await runTarget(p, { name: "app" });
  await runTarget(p, { name: "app-drop", args: ["/app/target", "--drop", "1000:1000"] });
  await runTarget(p, {
    name: "app-drop-in-place",
    args: ["/app/target", "--drop-in-place", "1000:1000"],
  });
  const tmp = (await p.docker(["create", "dbg-test/target"])).stdout.trim();
  await p.docker(["commit", "--change", "USER 101:101", tmp, "dbg-test/target:user101"]);
  await p.docker(["rm", tmp]);
  await runTarget(p, { name: "app-user101", image: "dbg-test/target:user101" });
  await runTarget(p, { name: "app-nonroot-ro", user: "1000:1000", readOnly: true });
  await runTarget(p, { name: "app-peek", args: ["/app/target", "--peek"] });
  const hostPid = Number((await p.docker(["inspect", "-f", "{{.State.Pid}}", "app"])).stdout);
  // Podman's own mounts (/etc/hosts and the like) show in `podman diff` from the start.
  const before = await diffTarget(p, "app");
  const written = async () => {
    const now = await diffTarget(p, "app");
    return now === before ? "" : now;
  };

  await t.step("a command sees the target's files as / and its exit code is dbg's", async () => {
    const r = await dbg(["app", "--", "sh", "-c", "cat /etc/os-release; echo err >&2; exit 42"]);
    assert.equal(r.code, 42, r.stderr);
    assert.match(r.stdout, /ID=dbgtest/);
    assert.match(r.stderr, /^err$/m);
    assert.match(r.stderr, /chroot mode \(busybox:musl has static tools\)/);
  });

  await t.step("without the runtime word, dbg finds the target on this Podman", async () => {
    const r = await as.run(["app", "--", "true"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^dbg: app is on podman \(unix:\/\/\/.*podman\.sock\)$/m);
  });

  await t.step("piped stdin reaches the command and ends with EOF", async () => {
    const r = await dbg(["-q", "-i", "app", "--", "wc", "-l"], "a\nb\nc\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "3");
  });

  await accessScenarios(t, dbg, APP_TARGETS);

  await t.step("a target that crashed is debugged through a copy", async () => {
    const crashed = await p.docker([
      ...["run", "--name", "crashed", "--network", "none", "-w", "/app"],
      ...["dbg-test/target", "/app/target", "--crash", "note", "3"],
    ], { check: false });
    assert.equal(crashed.code, 3, crashed.stderr);
    const r = await dbg(["crashed", "--", "cat", "/app/note"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "written before the crash\n");
    assert.match(r.stderr, /^dbg: crashed exited with code 3 /m);
  });

  await t.step("errors speak Podman: no such container, no socket", async () => {
    const none = await dbg(["nope"]);
    assert.equal(none.code, 125);
    assert.match(none.stderr, /^dbg: No such container: nope \(running: .*app.*\)$/m);
    assert.match(none.stderr, /podman ps/);
    const gone = await runDbg(["podman", "-H", "unix:///nonexistent/podman.sock", "app"]);
    assert.equal(gone.code, 125);
    assert.match(
      gone.stderr,
      /^dbg: Cannot connect to the Podman service at unix:\/\/\/nonexistent/m,
    );
    assert.match(gone.stderr, /systemctl --user start podman.socket/);
    assert.ok(!/\n\s+at /.test(gone.stderr), gone.stderr);
  });

  await t.step("a terminal session through tmux", async () => {
    const argv = as.argv(["podman", "app"]);
    const tty = await Tty.start(`${argv.map(q).join(" ")}; echo EXIT=$?; sleep 30`, {});
    try {
      await tty.waitFor(/^\[dbg\] \/app # ?$/m, 40_000);
      await tty.send("cat /etc/os-release | grep ^ID=; [ -t 0 ] && echo ON-A-TTY; exit 7", "Enter");
      const screen = await tty.waitFor(/^EXIT=7$/m, 20_000);
      assert.match(screen, /^ID=dbgtest/m);
      assert.match(screen, /^ON-A-TTY$/m);
    } finally {
      await tty.kill();
    }
  });

  await signalSoak(t, {
    spawn: (args) => as.spawn(["podman", ...args]),
    target: "app",
    hostPid,
    leftovers: () => sidecarsLeft(p),
    written,
    runs: 8,
  });

  await t.step("no leftovers, and the target still runs as it was started", async () => {
    assert.deepEqual(await sidecarsLeft(p), []);
    assert.equal(await written(), "");
    const pid = await p.docker(["inspect", "-f", "{{.State.Pid}}", "app"]);
    assert.equal(Number(pid.stdout), hostPid);
  });

  await killSoak(t, {
    spawn: (args) => as.spawn(["podman", ...args]),
    argv: (args) => as.argv(["podman", ...args]),
    target: "app",
    hostPid,
    written,
    gc: async () => {
      const gc = await as.run(["gc"]);
      assert.equal(gc.code, 0, gc.stderr);
      return await sidecarsLeft(p);
    },
  });
}
