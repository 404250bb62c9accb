/**
 * End-to-end tests of `dbg docker` on targets that are not running, against a private dockerd:
 * a container that wrote a file and crashed, one that was created and never started, and an
 * image. Each session runs in a throwaway copy; afterwards nothing of it may be left
 * (containers, images, volumes), and the original must be as it was (state, exit code,
 * `docker diff`, volume). Without a TTY, on a terminal (tmux), and under signals.
 */

import assert from "node:assert/strict";
import { dbgArgv, dbgDocker, spawnDbg } from "../helpers/dbg.ts";
import { dockerdOrSkip, type PrivateDockerd } from "../helpers/dockerd.ts";
import { BUSYBOX_IMAGE, loadTestImages, TARGET_IMAGE } from "../helpers/images.ts";
import { copyNetworkStep, type CopyRuntime, copySignalStep, copyTerminalStep } from "./_copy.ts";

/** What must not change in an original: its state, exit code and filesystem changes. */
async function original(d: PrivateDockerd, name: string): Promise<string> {
  const state = await d.docker(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name]);
  const diff = await d.docker(["diff", name]);
  return `${state.stdout.trim()}\n${diff.stdout.trim()}`;
}

/** What a copy session may leave: dbg's containers, committed images, and new volumes. */
async function leftovers(d: PrivateDockerd, volumes: string[]): Promise<string[]> {
  const lines = async (args: string[]) =>
    (await d.docker(args)).stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  // The daemon removes an exited sidecar itself (AutoRemove): give it a moment.
  let left: string[] = [];
  for (let i = 0; i < 15; i++) {
    left = [
      ...(await lines(["ps", "-a", "--filter", "label=dbg.session", "--format", "{{.Names}}"]))
        .map((n) => `container ${n}`),
      ...(await lines(["images", "--filter", "label=dbg.session", "--format", "{{.ID}}"]))
        .map((n) => `image ${n}`),
      ...(await lines(["images", "dbg-copy", "--format", "{{.Repository}}:{{.Tag}}"]))
        .map((n) => `image ${n}`),
      ...(await lines(["volume", "ls", "-q"])).filter((v) => !volumes.includes(v))
        .map((n) => `volume ${n}`),
    ];
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return left;
}

Deno.test({
  name: "dbg docker on targets that are not running: throwaway copies (private dockerd)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const d = await dockerdOrSkip();
    if (!d) return;
    const dbg = (args: string[]) => dbgDocker(d.host, args);
    try {
      await loadTestImages(d);
      // crashed: wrote /app/note, then exited 3; its named volume holds data/v.
      await d.docker(["volume", "create", "appdata"]);
      await d.docker([
        ...["run", "--rm", "-v", "appdata:/data", BUSYBOX_IMAGE],
        ...["sh", "-c", "echo from the volume > /data/v"],
      ]);
      const crashed = await d.docker([
        ...["run", "--name", "crashed", "--network", "none", "-w", "/app", "-e", "FOO=bar x"],
        ...["-v", "appdata:/app/data", TARGET_IMAGE, "/app/target", "--crash", "note", "3"],
      ], { check: false });
      assert.equal(crashed.code, 3, crashed.stderr);
      await d.docker([
        ...["create", "--name", "never", "--network", "none", "--read-only"],
        ...["-u", "1000:1000", TARGET_IMAGE],
      ]);
      const volumes = (await d.docker(["volume", "ls", "-q"])).stdout.trim().split("\n");
      const before = {
        crashed: await original(d, "crashed"),
        never: await original(d, "never"),
      };
      const clean = async () => {
        assert.deepEqual(await leftovers(d, volumes), []);
        assert.equal(await original(d, "crashed"), before.crashed);
        assert.equal(await original(d, "never"), before.never);
      };

      await t.step("a crashed container: its files, env, working dir and volume", async () => {
        const r = await dbg([
          ...["crashed", "--", "sh", "-c"],
          'pwd; cat note data/v; echo "FOO=$FOO"; echo x > note; exit 7',
        ]);
        assert.equal(r.code, 7, r.stderr);
        assert.equal(r.stdout, "/app\nwritten before the crash\nfrom the volume\nFOO=bar x\n");
        assert.match(
          r.stderr,
          /^dbg: crashed exited with code 3 (just now|\d+ \w+ ago): this session runs in a throwaway copy; changes are discarded, except in its volumes$/m,
        );
        await clean();
      });

      await t.step("$DBG_ENTRYPOINT runs the target's own entrypoint in the copy", async () => {
        const r = await dbg([
          ...["-q", "crashed", "--", "sh", "-c"],
          'echo "$DBG_ENTRYPOINT"; eval "$DBG_ENTRYPOINT"; echo "rc=$?"',
        ]);
        assert.equal(r.stdout, "/app/target --crash note 3\nrc=3\n", r.stderr);
        const debug = await dbg(["--debug", "crashed", "--", "true"]);
        assert.match(debug.stderr, /target entrypoint: \/app\/target --crash note 3/);
        await clean();
      });

      await t.step("a container created and never started, read-only and non-root", async () => {
        const r = await dbg([
          ...["never", "--", "sh", "-c"],
          "grep Uid /proc/1/status; touch /x || echo read-only",
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^Uid:\s+1000\s/m);
        assert.match(r.stdout, /^read-only$/m);
        assert.match(r.stderr, /^dbg: never was created and never started: this session runs/m);
        await clean();
      });

      await t.step("an image (image:REF), and one that is not there", async () => {
        const r = await dbg([
          `image:${TARGET_IMAGE}`,
          "--",
          "sh",
          "-c",
          'ls /app/target; echo "$DBG_ENTRYPOINT"',
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "/app/target\n/app/target\n");
        assert.match(
          r.stderr,
          new RegExp(`^dbg: ${TARGET_IMAGE} is an image: this session runs`, "m"),
        );
        const missing = await dbg(["--pull", "never", "image:dbg-test/nothing:1", "--", "true"]);
        assert.equal(missing.code, 125);
        assert.match(missing.stderr, /^dbg: Image dbg-test\/nothing:1 not found/m);
        await clean();
      });

      await t.step("--dry-run shows the copy and makes nothing", async () => {
        const r = await dbg(["--dry-run", "--name", "dbg-dry", "crashed"]);
        const plan = JSON.parse(r.stdout);
        assert.equal(plan.copy.name, "dbg-dry-copy");
        assert.equal(plan.target.id, "dbg-dry-copy");
        assert.deepEqual(plan.copy.entrypoint, ["/app/target", "--crash", "note", "3"]);
        await clean();
      });

      const copies: CopyRuntime = {
        dbg,
        argv: (args) => dbgArgv(["docker", "-H", d.host, ...args]),
        spawn: (args) => spawnDbg(["docker", "-H", d.host, ...args]),
        clean,
        target: ["crashed"],
        promptMs: 40_000,
      };
      await copyNetworkStep(t, copies);
      await copyTerminalStep(t, copies);
      await copySignalStep(t, copies, { runs: 8, withinMs: 1500 });
    } finally {
      await d.stop();
    }
  },
});
