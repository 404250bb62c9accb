/**
 * The access scenarios every runtime's end-to-end test runs (issue 8): the scenarios of
 * cdebug's e2e suite and mint's debug.bats, targets that drop root, numeric users, and the
 * profiles. Each runtime starts the same targets its own way and passes a runner for
 * `dbg <runtime> … <args>`.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ShResult } from "../helpers/dockerd.ts";

/** Runs `dbg <runtime> [connection flags] <args>` with optional stdin. */
export type DbgRunner = (args: string[], stdin?: string) => Promise<ShResult>;

/** The targets, by the name dbg takes. All run the test target image. */
export interface AccessTargets {
  /** Runs as root. */
  root: string;
  /** Started as root, dropped to 1000:1000 and exec'd itself (`--drop`, gosu-style). */
  drop: string;
  /** Started as root, dropped to 1000:1000 without exec (`--drop-in-place`: not dumpable). */
  dropInPlace: string;
  /** Its image's config says `USER 101:101`, ids its passwd and group files do not know. */
  user101: string;
  /** Runs as 1000:1000 with a read-only rootfs. */
  nonrootRo: string;
  /** Runs as root and keeps trying to open other processes' /proc/<pid>/fd/0 and root (`--peek`). */
  peek: string;
}

/** The names the Docker and containerd tests give these targets. */
export const APP_TARGETS: AccessTargets = {
  root: "app",
  drop: "app-drop",
  dropInPlace: "app-drop-in-place",
  user101: "app-user101",
  nonrootRo: "app-nonroot-ro",
  peek: "app-peek",
};

const MARKER = "target-rootfs-marker\n";

/** Runs every access scenario as steps of `t`. */
export async function accessScenarios(
  t: Deno.TestContext,
  dbg: DbgRunner,
  targets: AccessTargets,
): Promise<void> {
  const { root, drop, dropInPlace, user101, nonrootRo, peek } = targets;
  const ok = (r: ShResult, what: string) => assert.equal(r.code, 0, `${what}: ${r.stderr}`);

  await t.step("cdebug: a command right after the target needs no --", async () => {
    const r = await dbg(["-q", root, "cat", "/etc/os-release"]);
    ok(r, "cat");
    assert.match(r.stdout, /ID=dbgtest/);
  });

  await t.step(
    "a name typed without a path runs the tools, never a plant of the target's",
    async () => {
      // The target's PATH holds a planted ls and curl (copies of hello), root or not.
      for (const target of [root, nonrootRo]) {
        const r = await dbg([
          "-q",
          target,
          "--",
          "sh",
          "-c",
          "ls / | grep -c marker; curl; echo rc=$?",
        ]);
        assert.equal(r.stdout, "1\nrc=127\n", `${target}: ${r.stderr}`);
      }
      // --target-path adds the target's PATH after the tools: busybox's ls still wins.
      const both = await dbg([
        "-q",
        "--target-path",
        root,
        "--",
        "sh",
        "-c",
        "ls / | grep -c marker; curl",
      ]);
      ok(both, "--target-path");
      assert.equal(both.stdout, "1\nhello from target\n");
    },
  );

  await t.step("-e values reach the command, and no process's argv", async () => {
    const r = await dbg([
      ...["-q", root, "-e", "SECRET=hunter2", "--", "sh", "-c"],
      'cat /proc/[0-9]*/cmdline | tr "\\0" "\\n" | grep -c "hunt[e]r2"; echo "$SECRET"',
    ]);
    assert.equal(r.stdout, "0\nhunter2\n", r.stderr);
  });

  await t.step(
    "a root target cannot open the session's processes through /proc, unless dbg says so",
    async () => {
      // The target logs every process whose fd 0 or root it opens: with general, the session
      // holds SYS_PTRACE, which the target lacks, so the kernel refuses.
      const cmd = ["--", "sh", "-c", ": > /peek.log; sleep 1; cat /peek.log"];
      const general = await dbg(["-q", peek, ...cmd]);
      ok(general, "general");
      assert.equal(general.stdout, "");
      // With baseline the session holds the target's capabilities and no more: dbg notes it.
      const baseline = await dbg(["--profile", "baseline", peek, ...cmd]);
      ok(baseline, "baseline");
      assert.match(baseline.stdout, /^reached \d+ fd0$/m);
      assert.match(baseline.stderr, /^dbg: note: this session holds no capability .* lacks, so /m);
    },
  );

  await t.step("cdebug: -q -i runs a script from stdin, and stderr stays empty", async () => {
    const r = await dbg(["-q", "-i", root], 'echo "hello $((6*7)) world"\nexit 0\n');
    ok(r, "script");
    assert.match(r.stdout, /hello 42 world/);
    assert.equal(r.stderr, "");
  });

  await t.step("cdebug: -u 101:101 needs no passwd entry (id -u, busybox)", async () => {
    for (const target of [root, user101]) {
      const id = await dbg(["-q", "-u", "101:101", target, "id", "-u"]);
      ok(id, `id on ${target}`);
      assert.equal(id.stdout, "101\n");
      assert.equal(id.stderr, "");
      const bb = await dbg(["-q", "-u", "101:101", target, "busybox"]);
      ok(bb, `busybox on ${target}`);
      assert.match(bb.stdout, /BusyBox v1/);
    }
    const groups = await dbg(["-q", "-u", "4242", root, "sh", "-c", "id -u; id -g"]);
    assert.equal(groups.stdout, "4242\n0\n", "an unknown uid gets gid 0, as with docker run");
    const named = await dbg(["-q", "-u", "app", root, "sh", "-c", "id -u; id -g"]);
    assert.equal(named.stdout, "1000\n1000\n", "names resolve in the target's files");
    const unknown = await dbg(["-q", "-u", "nobody-here", root, "id"]);
    assert.equal(unknown.code, 125);
    assert.match(unknown.stderr, /^dbg: user nobody-here is not in the target's \/etc\/passwd/);
  });

  await t.step("mint: ps shows the target's PID 1 and the command under its own name", async () => {
    const r = await dbg(["-q", root, "--", "ps", "-o", "pid,args"]);
    ok(r, "ps");
    assert.match(r.stdout, /^\s*1 \/app\/target$/m);
    assert.match(r.stdout, /^\s*\d+ ps -o pid,args$/m);
    // (dbg's lifeline may be there too, or still starting: runc init.)
    const helpers = r.stdout.trim().split("\n").slice(1)
      .filter((l) => !/^\s*1 /.test(l) && !/^\s*\d+ ps -o pid,args$/.test(l))
      .filter((l) => !/dbg-lifeline|runc init/.test(l));
    assert.equal(helpers.length, 1, `one dbg helper besides the target and ps:\n${r.stdout}`);
    assert.match(helpers[0], /dbg-helper/);
    assert.doesNotMatch(r.stdout, /cd --|exec --|start-stop-daemon|\$1/);
  });

  await t.step("mint: /proc/1/root reads the target's files", async () => {
    const r = await dbg(["-q", root, "--", "cat", "/proc/1/root/marker.txt"]);
    ok(r, "cat");
    assert.equal(r.stdout, MARKER);
  });

  await t.step("a target that dropped root (gosu) is read with SYS_PTRACE (general)", async () => {
    const plan = JSON.parse((await dbg([drop, "--dry-run"])).stdout);
    assert.equal(plan.sidecar.profile, "general");
    assert.deepEqual(plan.sidecar.capAdd, ["SYS_PTRACE"]);
    const r = await dbg(["-q", drop, "--", "sh", "-c", "cat /marker.txt; id -u"]);
    ok(r, "general");
    assert.equal(r.stdout, `${MARKER}0\n`);
    const inPlace = await dbg(["-q", dropInPlace, "--", "cat", "/marker.txt"]);
    ok(inPlace, "a non-dumpable target");
    assert.equal(inPlace.stdout, MARKER);
    // What strace -p and gdb -p do first: ptrace-attach to the target's process.
    for (const target of [drop, dropInPlace]) {
      const attach = await dbg(["-q", target, "--", "/usr/bin/attach", "1"]);
      ok(attach, `attach on ${target}`);
      assert.equal(attach.stdout, "attached to 1\n");
    }
  });

  await t.step(
    "baseline: plain mode as the target's live uid, and the banner says why",
    async () => {
      // Kubernetes runs an image's USER 101:101 as 101:0 (the kubelet keeps the uid only).
      for (const [target, uid] of [[drop, "1000"], [user101, "101"], [nonrootRo, "1000"]]) {
        const r = await dbg([
          "--profile",
          "baseline",
          target,
          "--",
          "sh",
          "-c",
          'cat "$DBG_TARGET_ROOT/marker.txt"; echo "$(id -u):$(id -g)"; grep CapEff /proc/self/status',
        ]);
        ok(r, `baseline on ${target}`);
        const ids =
          /plain mode \(baseline adds no SYS_PTRACE, so dbg runs as the target's ids (\d+):(\d+)/
            .exec(r.stderr);
        assert.ok(ids, `${target}: ${r.stderr}`);
        assert.equal(ids[1], uid, target);
        assert.equal(r.stdout, `${MARKER}${ids[1]}:${ids[2]}\nCapEff:\t0000000000000000\n`, target);
      }
      const rootBase = await dbg(["-q", "--profile", "baseline", root, "--", "cat", "/marker.txt"]);
      ok(rootBase, "baseline on a root target keeps chroot");
      assert.equal(rootBase.stdout, MARKER);
    },
  );

  await t.step("baseline on a target only SYS_PTRACE can read names the flag", async () => {
    const r = await dbg(["--profile", "baseline", dropInPlace, "--", "true"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^dbg: cannot read the target's root filesystem .*--profile general/m);
    assert.doesNotMatch(r.stderr, /Permission denied|permission denied$/m);
    const chroot = await dbg(["--profile", "baseline", "--mode", "chroot", drop, "--", "true"]);
    assert.equal(chroot.code, 125, chroot.stderr);
    assert.match(chroot.stderr, /^dbg: cannot read .*1000:1000.*--profile general/m);
  });

  await t.step("restricted: non-root, no capabilities, no privilege gain", async () => {
    const plan = JSON.parse((await dbg(["--profile", "restricted", drop, "--dry-run"])).stdout);
    assert.deepEqual(plan.sidecar.capDrop, ["ALL"]);
    assert.equal(plan.sidecar.noNewPrivileges, true);
    assert.equal(plan.mode, "plain");
    const r = await dbg([
      "-q",
      "--profile",
      "restricted",
      "-u",
      "1000:1000",
      drop,
      "--",
      "sh",
      "-c",
      'cat "$DBG_TARGET_ROOT/marker.txt"; id -u; grep -E "^(CapBnd|NoNewPrivs)" /proc/self/status',
    ]);
    ok(r, "restricted");
    assert.equal(r.stdout, `${MARKER}1000\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\n`);
  });

  await t.step("a read-only non-root target: chroot with general", async () => {
    const r = await dbg(["-q", nonrootRo, "--", "sh", "-c", "cat /marker.txt; touch /x"]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, MARKER);
    assert.match(r.stderr, /Read-only file system/);
  });
}
