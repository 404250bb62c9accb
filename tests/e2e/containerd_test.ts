/**
 * End-to-end tests of `dbg containerd` against a private containerd (its own root, state and
 * socket): commands, exit codes, streams, target kinds and lookups, the TTY, signals, errors,
 * and that every sidecar resource (task, container, snapshot, lease, FIFOs) is gone afterwards.
 */

import assert from "node:assert/strict";
import {
  containerdOrSkip,
  loadImagesInto,
  runCtrTarget,
  upperListing,
} from "../helpers/containerd.ts";
import { dbgArgv, runDbg, runDbgAsNobody, spawnDbg } from "../helpers/dbg.ts";
import { startDockerd } from "../helpers/dockerd.ts";
import { BUSYBOX_IMAGE, loadTestImages } from "../helpers/images.ts";
import { dockerConfigFor, pushImage, registryOrSkip } from "../helpers/registry.ts";
import { poll, shellQuote as q, Tty } from "../helpers/tty.ts";
import { accessScenarios, APP_TARGETS } from "./_access.ts";
import { killSoak, signalSoak, terminalStop } from "./_soak.ts";

const CRI = (pod: string, ctr: string, ns: string) => ({
  "io.kubernetes.pod.name": pod,
  "io.kubernetes.container.name": ctr,
  "io.kubernetes.pod.namespace": ns,
});

Deno.test({
  name: "dbg containerd end to end (private containerd)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const c = await containerdOrSkip();
    if (!c) return;
    const dbg = (args: string[], stdin?: string) =>
      runDbg(["containerd", "--address", c.address, ...args], { stdin });
    /** dbg's FIFO dirs in /tmp (a crashed earlier run may have left some: not ours). */
    const fifoDirs = () =>
      [...Deno.readDirSync("/tmp")].filter((e) => e.name.startsWith("dbg-fifo-")).map((e) =>
        e.name
      );
    const fifosBefore = new Set(fifoDirs());
    /** Resources a session may leave: containers, snapshots and leases named dbg-. */
    const leftovers = async () => {
      const out: string[] = [];
      for (const ns of ["default", "k8s.io"]) {
        for (const what of [["containers", "ls", "-q"], ["snapshots", "ls"], ["leases", "ls"]]) {
          const r = await c.ctr(what, { namespace: ns, check: false });
          // dbg-image-* leases hold pulled images, like `docker pull` keeps them: not leftovers.
          for (const line of r.stdout.split("\n")) {
            if (/\bdbg-/.test(line) && !/\bdbg-image-/.test(line)) out.push(`${ns}: ${line}`);
          }
        }
      }
      return out;
    };
    try {
      await loadImagesInto(c, "default");
      await loadImagesInto(c, "k8s.io");
      const app = await runCtrTarget(c, {
        namespace: "default",
        id: "app",
        labels: { "nerdctl/name": "web" },
      });
      await runCtrTarget(c, { namespace: "default", id: "app-nonroot", user: "1000:1000" });
      await runCtrTarget(c, { namespace: "default", id: "app-ro", readOnly: true });
      await runCtrTarget(c, {
        namespace: "k8s.io",
        id: "3f2a9c0d11",
        labels: CRI("web", "api", "shop"),
      });
      await runCtrTarget(c, {
        namespace: "k8s.io",
        id: "3f2a77aa22",
        labels: CRI("web", "api", "dev"),
      });
      const target = (id: string, o: { user?: string; readOnly?: boolean; args?: string[] } = {}) =>
        runCtrTarget(c, { namespace: "default", id, ...o });
      const drop = await target("app-drop", { args: ["/app/target", "--drop", "1000:1000"] });
      await target("app-drop-in-place", { args: ["/app/target", "--drop-in-place", "1000:1000"] });
      await target("app-user101", { user: "101:101" });
      await target("app-nonroot-ro", { user: "1000:1000", readOnly: true });
      await target("app-peek", { args: ["/app/target", "--peek"] });
      const upperBefore = await upperListing(c, "app");
      const dropUpper = (await upperListing(c, "app-drop")).join("\n");

      await accessScenarios(t, dbg, APP_TARGETS);

      await t.step(
        "cdebug: host PID and network namespaces, and another's PID namespace",
        async () => {
          await runCtrTarget(c, {
            namespace: "default",
            id: "app-host",
            // This process's PID namespace is the host's (ctr hands runc the path as is).
            flags: ["--net-host", "--with-ns", `pid:/proc/${Deno.pid}/ns/pid`],
          });
          await runCtrTarget(c, {
            namespace: "default",
            id: "app-joined",
            flags: ["--with-ns", `pid:/proc/${app.pid}/ns/pid`],
            args: ["/app/target", "--drop", "1000:1000"],
          });
          for (const id of ["app-host", "app-joined"]) {
            const r = await dbg(["-q", id, "sh", "-c", "cat /marker.txt; id -u"]);
            assert.equal(r.code, 0, `${id}: ${r.stderr}`);
            assert.equal(r.stdout, "target-rootfs-marker\n0\n", id);
            await c.ctr(["tasks", "kill", "-s", "KILL", id]);
          }
        },
      );

      await t.step(
        "a command sees the target's rootfs; exit code and streams pass through",
        async () => {
          const r = await dbg(["app", "--", "cat", "/etc/os-release"]);
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, /ID=dbgtest/);
          assert.match(r.stderr, /chroot mode/);
          const s = await dbg([
            "-q",
            "app",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; /usr/bin/hello; exit 42",
          ]);
          assert.equal(s.code, 42);
          assert.equal(s.stdout, "out\nhello from target\n");
          assert.equal(s.stderr, "err\n");
        },
      );

      await t.step("piped stdin reaches the command and ends with EOF", async () => {
        const r = await dbg(["-q", "app", "-i", "--", "cat"], "hi\nthere\n");
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "hi\nthere\n");
      });

      await t.step(
        "the sidecar has the runtime's default seccomp profile, unless privileged",
        async () => {
          const filtered = await dbg(["-q", "app", "--", "grep", "^Seccomp:", "/proc/self/status"]);
          assert.equal(filtered.stdout, "Seccomp:\t2\n", filtered.stderr);
          // Without SYS_ADMIN, no namespaces: unshare fails, as in a Docker sidecar.
          const unshare = await dbg(["-q", "app", "--", "unshare", "-n", "true"]);
          assert.notEqual(unshare.code, 0);
          const privileged = await dbg(
            ["-q", "--privileged", "app", "--", "grep", "^Seccomp:", "/proc/self/status"],
          );
          assert.equal(privileged.stdout, "Seccomp:\t0\n", privileged.stderr);
        },
      );

      await t.step("targets by nerdctl name, non-root and read-only targets", async () => {
        for (const ref of ["web", "app-nonroot", "app-ro"]) {
          const r = await dbg(["-q", ref, "--", "cat", "/marker.txt"]);
          assert.equal(r.code, 0, `${ref}: ${r.stderr}`);
          assert.equal(r.stdout, "target-rootfs-marker\n", ref);
        }
        const plan = JSON.parse((await dbg(["app-nonroot", "--dry-run"])).stdout);
        assert.deepEqual(plan.sidecar.capAdd, ["SYS_PTRACE"]);
      });

      await t.step("POD/CONTAINER through CRI labels, narrowed by --pod-namespace", async () => {
        const both = await dbg(["-n", "k8s.io", "web/api", "--", "true"]);
        assert.equal(both.code, 125);
        assert.match(both.stderr, /matches 2 containers/);
        const r = await dbg([
          "-q",
          "-n",
          "k8s.io",
          "--pod-namespace",
          "shop",
          "web/api",
          "--",
          "cat",
          "/marker.txt",
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "target-rootfs-marker\n");
        const prefix = await dbg(["-q", "3f2a9", "--", "true"]);
        assert.equal(prefix.code, 0, prefix.stderr);
      });

      await t.step(
        "user errors: no such target, ambiguous prefix, paused task, image, socket",
        async () => {
          const none = await dbg(["nope"]);
          assert.equal(none.code, 125);
          assert.match(none.stderr, /^dbg: No such container: nope/);
          const amb = await dbg(["-n", "k8s.io", "3f2a"]);
          assert.match(amb.stderr, /^dbg: 3f2a matches 2 containers/);
          assert.match(amb.stderr, /Hint: Pass a longer id/);
          // (A container without a running task is debugged through a copy:
          // containerd_copy_test.ts.)
          await runCtrTarget(c, { namespace: "default", id: "paused" });
          await c.ctr(["tasks", "pause", "paused"]);
          const paused = await dbg(["paused"]);
          assert.equal(paused.code, 125);
          assert.match(paused.stderr, /Target paused is not running \(state: paused\)/);
          assert.match(paused.stderr, /Hint: Start it first \(ctr -n default task resume paused\)/);
          await c.ctr(["tasks", "rm", "-f", "paused"]);
          await c.ctr(["containers", "rm", "paused"]);
          const img = await dbg(["app", "--image", "nosuch/image:1", "--pull", "never"]);
          assert.equal(img.code, 125);
          assert.match(
            img.stderr,
            /Image nosuch\/image:1 not found: not in containerd namespace default and --pull never/,
          );
          const ns = await dbg(["-n", "nosuch", "app"]);
          assert.equal(ns.code, 125);
          assert.match(
            ns.stderr,
            /^dbg: containerd has no namespace nosuch \(it has: .*default.*\)/,
          );
          const sock = await runDbg(["containerd", "--address", "/tmp/dbg-no-such.sock", "app"]);
          assert.equal(sock.code, 125);
          assert.match(
            sock.stderr,
            /^dbg: Cannot connect to containerd at \/tmp\/dbg-no-such\.sock: no such socket/,
          );
        },
      );

      await t.step(
        "dbg pulls the image itself: plain registry, auth refused, then given",
        async () => {
          const plain = await registryOrSkip();
          const auth = { user: "dbg", password: "s3cret-pw" };
          const locked = await registryOrSkip({ auth });
          if (!plain || !locked) return;
          const d = await startDockerd(); // only to push the test image into the registries
          try {
            await loadTestImages(d);
            const ref = `${plain.addr}/tools/busybox:musl`;
            await pushImage(d, BUSYBOX_IMAGE, ref);
            const secret = `${locked.addr}/tools/busybox:musl`;
            await pushImage(d, BUSYBOX_IMAGE, secret, { auth });
            const r = await dbg(["-q", "app", "--image", ref, "--", "cat", "/marker.txt"]);
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stdout, "target-rootfs-marker\n");
            const listed = await c.ctr(["images", "ls", "-q"]);
            assert.match(listed.stdout, new RegExp(`${plain.addr}/tools/busybox:musl`));
            const missing = await dbg(["app", "--image", `${plain.addr}/tools/nope:1`]);
            assert.equal(missing.code, 125);
            assert.match(missing.stderr, /not found: the registry has no such image/);
            const refused = await dbg(["app", "--image", secret]);
            assert.equal(refused.code, 125);
            assert.match(refused.stderr, /^dbg: Pull of .* was refused/);
            const cfg = await dockerConfigFor(locked.addr, auth);
            const ok = await runDbg(
              [
                "containerd",
                "--address",
                c.address,
                "--debug",
                "app",
                "--image",
                secret,
                "--",
                "true",
              ],
              { env: { DOCKER_CONFIG: cfg } },
            );
            assert.equal(ok.code, 0, ok.stderr);
            assert.doesNotMatch(ok.stderr, /s3cret-pw/);
            await Deno.remove(cfg, { recursive: true });
          } finally {
            await d.stop();
            await plain.stop();
            await locked.stop();
          }
        },
      );

      await t.step("the TTY path: prompt, the target's root, resize, exit code", async () => {
        const argv = dbgArgv(["containerd", "--address", c.address, "app"]);
        const tty = await Tty.start(
          `sh -c ${q(`${argv.map(q).join(" ")}; echo EXIT=$?; sleep 30`)}`,
          {
            cols: 100,
            rows: 30,
          },
        );
        try {
          await tty.waitFor(/^\[dbg\] \/app #\s*$/m, 30_000);
          await tty.send("ls /; stty size", "Enter");
          await tty.waitFor(/marker\.txt[\s\S]*30 100/, 10_000);
          await tty.send("exit 3", "Enter");
          await tty.waitFor(/EXIT=3/, 10_000);
        } finally {
          await tty.kill();
        }
      });

      await terminalStop(t, {
        argv: dbgArgv(["containerd", "--address", c.address, "-u", "1000:1000", "app"]),
        prompt: /^\[dbg\] \/app \$\s*$/m,
        hostPid: app.pid,
      });

      await t.step("SIGTERM to dbg ends the session with 143 and removes the sidecar", async () => {
        const child = spawnDbg([
          "containerd",
          "--address",
          c.address,
          "-q",
          "app",
          "--",
          "sleep",
          "100",
        ]);
        await poll("the sidecar task", async () => {
          const r = await c.ctr(["tasks", "ls"], { check: false });
          return /dbg-\w+\s+\d+\s+RUNNING/.test(r.stdout) ? true : null;
        }, 20_000);
        child.kill("SIGTERM");
        const out = await child.output();
        assert.equal(out.code, 143, new TextDecoder().decode(out.stderr));
      });

      await t.step(
        "an image outside the catalog with a static shell is probed: chroot",
        async () => {
          const tools = "docker.io/dbg-test/static-tools:1";
          await c.ctr(["images", "tag", "docker.io/library/busybox:musl", tools]);
          const r = await dbg(["app", "--image", tools, "--", "cat", "/marker.txt"]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "target-rootfs-marker\n");
          assert.match(
            r.stderr,
            /^dbg: chroot mode \(.*static-tools:1 is not in the catalog, and its shell is static\)/m,
          );
          assert.doesNotMatch(r.stderr, /pull/i);
        },
      );

      await t.step("a target in a user namespace of its own: the banner says so", async () => {
        // runc enters the bundle as the mapped root (host uid 200000): it must pass the test dir.
        await Deno.chmod(c.dir, 0o711);
        await runCtrTarget(c, {
          namespace: "default",
          id: "app-userns",
          flags: ["--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536"],
        });
        // Host root owns the namespace, so it holds every capability in it: both profiles read.
        for (const profile of ["general", "baseline"]) {
          const r = await dbg(["--profile", profile, "app-userns", "--", "cat", "/marker.txt"]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "target-rootfs-marker\n");
          assert.match(
            r.stderr,
            /^dbg: chroot mode \(.*the target is in a user namespace of its own \(uid map 0 200000 65536\)\)/m,
          );
        }
        await c.ctr(["tasks", "kill", "-s", "KILL", "app-userns"]);
      });

      await signalSoak(t, {
        spawn: (args) => spawnDbg(["containerd", "--address", c.address, ...args]),
        target: "app-drop",
        hostPid: drop.pid,
        leftovers: leftovers,
        written: async () => {
          const now = (await upperListing(c, "app-drop")).join("\n");
          return now === dropUpper ? "" : now;
        },
      });

      await t.step(
        "no leftovers: tasks, containers, snapshots, leases and FIFOs are gone",
        async () => {
          assert.deepEqual(await leftovers(), []);
          assert.deepEqual(fifoDirs().filter((n) => !fifosBefore.has(n)), []);
          assert.ok(app.pid > 0);
          // Nothing is left in the target's PID namespace: no process of dbg's, no zombie.
          const ns = await Deno.readLink(`/proc/${app.pid}/ns/pid`);
          const others: string[] = [];
          for (const e of Deno.readDirSync("/proc")) {
            if (!/^\d+$/.test(e.name) || Number(e.name) === app.pid) continue;
            try {
              if (Deno.readLinkSync(`/proc/${e.name}/ns/pid`) !== ns) continue;
              others.push(
                Deno.readTextFileSync(`/proc/${e.name}/status`).split("\n").slice(0, 3).join(" "),
              );
            } catch { /* gone */ }
          }
          assert.deepEqual(others, []);
          // Nothing was written into the target: its snapshot's upper layer is as it was.
          assert.deepEqual(await upperListing(c, "app"), upperBefore);
        },
      );

      await t.step("permission denied on the socket is one line telling to use sudo", async () => {
        const out = await runDbgAsNobody(["containerd", "--address", c.address, "app"]);
        assert.equal(out.code, 125, out.stderr);
        assert.match(
          out.stderr,
          /^dbg: Cannot connect to containerd at .*: permission denied\nHint: .*sudo/,
        );
      });

      // Last: a killed dbg's sessions end by the lifeline's missing beats; gc takes the rest.
      const conn = ["containerd", "--address", c.address];
      await killSoak(t, {
        spawn: (args) => spawnDbg([...conn, ...args]),
        argv: (args) => dbgArgv([...conn, ...args]),
        target: "app-drop",
        hostPid: drop.pid,
        written: async () => {
          const now = (await upperListing(c, "app-drop")).join("\n");
          return now === dropUpper ? "" : now;
        },
        gc: async () => {
          const gc = await runDbg(["gc"], { env: { CONTAINERD_ADDRESS: c.address } });
          assert.equal(gc.code, 0, gc.stderr);
          return [...await leftovers(), ...fifoDirs().filter((n) => !fifosBefore.has(n))];
        },
      });
    } finally {
      await c.stop();
    }
  },
});
