/**
 * Smoke test of the containerd test infrastructure: private containerd, test images imported
 * into two namespaces, ctr targets (root, non-root, read-only, CRI-labelled), full teardown.
 *
 * @module
 */

import {
  containerdOrSkip,
  CTR_BUSYBOX_IMAGE,
  CTR_NIXERY_IMAGE,
  CTR_TARGET_IMAGE,
  CTR_TEST_IMAGES,
  loadImagesInto,
  runCtrTarget,
  taskStatus,
} from "./containerd.ts";
import { exists, pidsMentioning, processRunning } from "./dockerd.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

function assertEquals<T>(actual: T, expected: T, msg: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`assertion failed: ${msg}: got ${a}, want ${e}`);
}

async function sha256Hex(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Interfaces in the network namespace of `pid`, from /proc/<pid>/net/dev. */
async function interfaces(pid: number): Promise<string[]> {
  const dev = await Deno.readTextFile(`/proc/${pid}/net/dev`);
  return dev.split("\n").slice(2).map((l) => l.split(":")[0].trim()).filter(Boolean);
}

Deno.test({
  name: "private containerd starts, imports test images, runs ctr targets, cleans up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const c = await containerdOrSkip();
    if (!c) return;
    const dir = c.dir;
    const pids: number[] = [];
    const shimSockets: string[] = [];
    try {
      assertEquals(CTR_TEST_IMAGES, [
        "docker.io/library/busybox:musl",
        "docker.io/dbg-test/target:latest",
        "nixery.dev/shell/busybox:latest",
      ], "names as containerd sees them");

      await t.step("images import into default and k8s.io", async () => {
        const started = performance.now();
        for (const ns of ["default", "k8s.io"]) {
          await loadImagesInto(c, ns);
          const names = (await c.ctr(["images", "ls", "-q"], { namespace: ns })).stdout.trim()
            .split("\n").sort();
          assertEquals(names, [...CTR_TEST_IMAGES].sort(), `images in ${ns}`);
        }
        console.log(`  images ready in ${((performance.now() - started) / 1000).toFixed(1)}s`);
        const snaps = await c.ctr(["snapshots", "--snapshotter", c.snapshotter, "ls"]);
        assert(snaps.stdout.includes("Committed"), "images are unpacked");
      });

      await t.step("targets run (root, non-root, read-only, CRI-labelled)", async () => {
        const root = await runCtrTarget(c, { namespace: "default", id: "t-root" });
        const user = await runCtrTarget(c, {
          namespace: "default",
          id: "t-user",
          user: "1000:1000",
        });
        const ro = await runCtrTarget(c, { namespace: "default", id: "t-ro", readOnly: true });
        const pod = await runCtrTarget(c, {
          namespace: "k8s.io",
          id: "0123456789abcdef",
          labels: {
            "io.kubernetes.pod.name": "web-0",
            "io.kubernetes.pod.namespace": "shop",
            "io.kubernetes.container.name": "app",
            "io.cri-containerd.kind": "container",
          },
        });
        pids.push(root.pid, user.pid, ro.pid, pod.pid);
        for (
          const [ns, id] of [["default", "t-root"], ["default", "t-user"], ["default", "t-ro"]]
        ) {
          assertEquals((await taskStatus(c, ns, id))?.status, "RUNNING", `${id} running`);
        }
        assertEquals(
          (await taskStatus(c, "k8s.io", pod.id))?.status,
          "RUNNING",
          "k8s.io target running",
        );

        const status = await Deno.readTextFile(`/proc/${user.pid}/status`);
        assert(/^Uid:\s+1000\s+1000\s/m.test(status), `t-user runs as uid 1000: ${status}`);
        assert(/^Gid:\s+1000\s+1000\s/m.test(status), "t-user runs as gid 1000");
        const rootStatus = await Deno.readTextFile(`/proc/${root.pid}/status`);
        assert(/^Uid:\s+0\s/m.test(rootStatus), "t-root runs as root");

        type Info = {
          Labels: Record<string, string>;
          Image: string;
          Snapshotter: string;
          Spec: { root: { readonly?: boolean }; process: { user: { uid: number } } };
        };
        const info = async (ns: string, id: string) =>
          JSON.parse((await c.ctr(["containers", "info", id], { namespace: ns })).stdout) as Info;
        assertEquals((await info("default", "t-ro")).Spec.root.readonly, true, "t-ro readonly");
        assert(!(await info("default", "t-root")).Spec.root.readonly, "t-root writable");
        assertEquals((await info("default", "t-user")).Spec.process.user.uid, 1000, "spec uid");
        const podInfo = await info("k8s.io", pod.id);
        assertEquals(podInfo.Labels["io.kubernetes.pod.name"], "web-0", "pod label");
        assertEquals(podInfo.Image, CTR_TARGET_IMAGE, "pod image");
        assertEquals(podInfo.Snapshotter, c.snapshotter, "snapshotter");

        // Own network namespace, loopback only (no CNI).
        const hostNet = await Deno.readLink("/proc/self/ns/net");
        for (const pid of [root.pid, pod.pid]) {
          assert(await Deno.readLink(`/proc/${pid}/ns/net`) !== hostNet, "own netns");
          assertEquals(await interfaces(pid), ["lo"], "only loopback");
        }

        // The shim socket name that stop() relies on (containerd 1.6 hard-codes the dir).
        for (const [ns, id] of [["default", "t-root"], ["k8s.io", pod.id]]) {
          const sock = `/run/containerd/s/${await sha256Hex(`${c.address}/${ns}/${id}`)}`;
          assert(await exists(sock), `shim socket ${sock} for ${ns}/${id}`);
          shimSockets.push(sock);
        }
      });

      await t.step("ctr run --rm of busybox and nixery", async () => {
        const ok = await c.ctr(["run", "--rm", CTR_BUSYBOX_IMAGE, "t1", "echo", "ok"]);
        assertEquals(ok.stdout.trim(), "ok", "busybox echo");
        const nix = await c.ctr(
          ["run", "--rm", CTR_NIXERY_IMAGE, "t2", "/bin/sh", "-c", "echo ok; readlink /bin/sh"],
          { namespace: "k8s.io" },
        );
        assertEquals(
          nix.stdout.trim().split("\n"),
          ["ok", "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-busybox/bin/sh"],
          "nixery sh",
        );
        const left = await c.ctr(["containers", "ls", "-q"]);
        assertEquals(left.stdout.trim().split("\n").sort(), ["t-ro", "t-root", "t-user"], "--rm");
      });
    } finally {
      const started = performance.now();
      await c.stop();
      console.log(`  stopped in ${((performance.now() - started) / 1000).toFixed(1)}s`);
    }
    assert(!await exists(dir), `${dir} removed`);
    assertEquals(await pidsMentioning(dir), [], "no containerd or shim process of the instance");
    assertEquals(pids.filter(processRunning), [], "no target process");
    for (const s of shimSockets) assert(!await exists(s), `${s} removed`);
    const base = dir.slice(dir.lastIndexOf("/") + 1);
    for (const h of ["", "/memory", "/pids", "/cpu", "/unified"]) {
      assert(!await exists(`/sys/fs/cgroup${h}/${base}`), `cgroup${h}/${base} removed`);
    }
  },
});
