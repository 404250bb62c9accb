/**
 * End-to-end tests of `dbg containerd` on containers without a running task, against a private
 * containerd: a task that wrote a file and crashed (STOPPED), a container whose task was
 * deleted, and one never started (read-only, non-root, in k8s.io by POD/CONTAINER). Each
 * session runs in a throwaway copy; afterwards nothing of it may be left (task, container,
 * snapshot, lease, keeper and FIFO dirs), and the original must be as it was (task status,
 * snapshot upper dir). Without a TTY, on a terminal (tmux), and under signals.
 */

import assert from "node:assert/strict";
import {
  containerdOrSkip,
  CTR_TARGET_IMAGE,
  loadImagesInto,
  type PrivateContainerd,
  taskStatus,
  upperListing,
} from "../helpers/containerd.ts";
import { dbgArgv, runDbg, spawnDbg } from "../helpers/dbg.ts";
import { poll } from "../helpers/tty.ts";
import { copyNetworkStep, type CopyRuntime, copySignalStep, copyTerminalStep } from "./_copy.ts";

const NAMESPACES = ["default", "k8s.io"];

/** dbg's directories in /tmp: keepers of copies, and FIFOs of sidecars. */
function dbgDirs(): string[] {
  return [...Deno.readDirSync("/tmp")].map((e) => e.name)
    .filter((n) => n.startsWith("dbg-copy-") || n.startsWith("dbg-fifo-"));
}

/** What a copy session may leave: dbg's tasks, containers, snapshots, leases and dirs. */
async function leftovers(c: PrivateContainerd, dirs: Set<string>): Promise<string[]> {
  const out = dbgDirs().filter((d) => !dirs.has(d)).map((d) => `/tmp/${d}`);
  for (const ns of NAMESPACES) {
    for (const what of [["tasks", "ls"], ["containers", "ls", "-q"], ["snapshots", "ls"]]) {
      const r = await c.ctr(what, { namespace: ns, check: false });
      for (const line of r.stdout.split("\n")) if (/\bdbg-/.test(line)) out.push(`${ns}: ${line}`);
    }
    const leases = await c.ctr(["leases", "ls"], { namespace: ns, check: false });
    for (const line of leases.stdout.split("\n")) {
      // dbg-image-* leases hold pulled images, as `docker pull` keeps them: not leftovers.
      if (/\bdbg-/.test(line) && !/\bdbg-image-/.test(line)) out.push(`${ns}: lease ${line}`);
    }
  }
  return out;
}

Deno.test({
  name: "dbg containerd on containers without a running task: throwaway copies",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const c = await containerdOrSkip();
    if (!c) return;
    const dbg = (args: string[]) => runDbg(["containerd", "--address", c.address, ...args]);
    const dirs = new Set(dbgDirs());
    try {
      await loadImagesInto(c, "default");
      await loadImagesInto(c, "k8s.io");
      const run = ["run", "-d", "--snapshotter", c.snapshotter, "--cwd", "/app"];
      await c.ctr([
        ...run,
        ...[
          "--env",
          "FOO=bar x",
          CTR_TARGET_IMAGE,
          "crashed",
          "/app/target",
          "--crash",
          "note",
          "3",
        ],
      ]);
      await poll(
        "crashed's task stopped",
        async () => (await taskStatus(c, "default", "crashed"))?.status === "STOPPED" ? true : null,
      );
      await c.ctr([...run, CTR_TARGET_IMAGE, "deleted", "/app/target", "--crash", "gone", "4"]);
      await poll(
        "deleted's task stopped",
        async () => (await taskStatus(c, "default", "deleted"))?.status === "STOPPED" ? true : null,
      );
      await c.ctr(["tasks", "rm", "deleted"]);
      await c.ctr([
        ...["containers", "create", "--snapshotter", c.snapshotter, "--read-only"],
        ...["--label", "io.kubernetes.pod.name=web", "--label", "io.kubernetes.container.name=api"],
        ...["--label", "io.kubernetes.pod.namespace=shop", CTR_TARGET_IMAGE, "never"],
      ], { namespace: "k8s.io" });
      const original = async () =>
        JSON.stringify({
          crashed: [await taskStatus(c, "default", "crashed"), await upperListing(c, "crashed")],
          deleted: [await taskStatus(c, "default", "deleted"), await upperListing(c, "deleted")],
          never: await upperListing(c, "never", "k8s.io"),
        });
      const before = await original();
      const clean = async () => {
        await poll(
          "nothing left",
          async () => (await leftovers(c, dirs)).length ? null : true,
          5000,
        )
          .catch(async () => assert.deepEqual(await leftovers(c, dirs), []));
        assert.equal(await original(), before);
      };

      await t.step(
        "a crashed task: its file, exit code, env and working dir are kept",
        async () => {
          const r = await dbg([
            ...["crashed", "--", "sh", "-c"],
            'pwd; cat note; echo "FOO=$FOO"; echo "$DBG_ENTRYPOINT"; echo x > note; exit 7',
          ]);
          assert.equal(r.code, 7, r.stderr);
          assert.equal(
            r.stdout,
            "/app\nwritten before the crash\nFOO=bar x\n/app/target --crash note 3\n",
          );
          assert.match(
            r.stderr,
            /^dbg: crashed exited with code 3 (just now|\d+ \w+ ago): this session runs in a throwaway copy; changes are discarded$/m,
          );
          await clean();
        },
      );

      await t.step("a container whose task was deleted", async () => {
        const r = await dbg(["-q", "deleted", "--", "sh", "-c", "cat gone"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "written before the crash\n");
        const loud = await dbg(["deleted", "--", "true"]);
        assert.match(loud.stderr, /^dbg: deleted has no task \(never started/m);
        await clean();
      });

      await t.step("a container never started, read-only, in k8s.io by POD/CONTAINER", async () => {
        const r = await dbg([
          ...["-n", "k8s.io", "web/api", "--", "sh", "-c"],
          "cat /proc/1/cmdline | tr '\\0' ' '; echo; touch /x || echo read-only",
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "/.dbg/keeper \nread-only\n");
        await clean();
      });

      const copies: CopyRuntime = {
        dbg,
        argv: (args) => dbgArgv(["containerd", "--address", c.address, ...args]),
        spawn: (args) => spawnDbg(["containerd", "--address", c.address, ...args]),
        clean,
        target: ["crashed"],
        promptMs: 40_000,
      };
      await copyNetworkStep(t, copies);
      await t.step("a network a containerd copy cannot join", async () => {
        const other = await dbg(["--network", "bridge", "crashed", "--", "true"]);
        assert.match(other.stderr, /^dbg: A containerd copy cannot join network bridge$/m);
        await clean();
      });
      await copyTerminalStep(t, copies);
      await copySignalStep(t, copies, { runs: 8, withinMs: 1000 });
    } finally {
      await c.stop();
    }
  },
});
