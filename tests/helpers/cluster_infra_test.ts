/**
 * Smoke test of the private cluster: a hostNetwork pod of the target image runs and logs,
 * `kubectl debug` attaches through API server → kubelet → containerd, the limited user may not
 * add ephemeral containers, everything listens on 127.0.0.1 only, and stop() leaves nothing.
 *
 * @module
 */

import { clusterOrSkip } from "./cluster.ts";
import { CTR_BUSYBOX_IMAGE, CTR_TARGET_IMAGE, taskStatus } from "./containerd.ts";
import { exists, pidsMentioning } from "./dockerd.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

function assertEquals<T>(actual: T, expected: T, msg: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`assertion failed: ${msg}: got ${a}, want ${e}`);
}

const secs = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)}s`;

/** `ip:port` of the TCP sockets that `pids` listen on (from /proc/net/tcp and tcp6). */
async function listeningAddresses(pids: number[]): Promise<string[]> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    try {
      for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
        const link = await Deno.readLink(`/proc/${pid}/fd/${fd.name}`).catch(() => "");
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m) inodes.add(m[1]);
      }
    } catch {
      // process gone
    }
  }
  const addresses: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of (await Deno.readTextFile(table)).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9])) continue; // 0A: LISTEN
      const [ip, port] = f[1].split(":");
      const v4 = ip.length === 8
        ? ip.match(/../g)!.reverse().map((h) => parseInt(h, 16)).join(".")
        : `[${ip}]`;
      addresses.push(`${v4}:${parseInt(port, 16)}`);
    }
  }
  return addresses;
}

function mountsBelow(dir: string, mountinfo: string): string[] {
  return mountinfo.split("\n").map((l) => l.split(" ")[4]).filter((p) =>
    p === dir || p?.startsWith(dir + "/")
  );
}

Deno.test({
  name: "private cluster runs a pod, attaches kubectl debug, enforces RBAC, cleans up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const started = performance.now();
    const k = await clusterOrSkip();
    if (!k) return;
    console.log(`  cluster up in ${secs(started)}`);
    const dir = k.dir, containerdDir = k.containerd.dir;
    const containers: string[] = []; // ids of the CRI containers and sandboxes
    try {
      await t.step("everything listens on 127.0.0.1 only", async () => {
        const pids = [...await pidsMentioning(dir), ...await pidsMentioning(containerdDir)];
        const addresses = await listeningAddresses(pids);
        // etcd (client, peer), API server, kubelet, containerd's stream server at least.
        assert(addresses.length >= 5, `listening sockets: ${addresses}`);
        assertEquals(addresses.filter((a) => !a.startsWith("127.0.0.1:")), [], "non-loopback");
      });

      await t.step("a hostNetwork pod of the target runs and logs", async () => {
        const since = performance.now();
        await k.applyPod({
          metadata: { name: "web" },
          spec: {
            nodeName: "localhost",
            hostNetwork: true,
            containers: [{ name: "api", image: CTR_TARGET_IMAGE, imagePullPolicy: "Never" }],
          },
        });
        console.log(`  pod running in ${secs(since)}`);
        const logs = await k.kubectl(["logs", "web"]);
        assert(logs.stdout.includes("target started"), `logs: ${logs.stdout}`);
        const asLimited = await k.kubectl(["logs", "web"], { user: "limited" });
        assert(asLimited.stdout.includes("target started"), "limited user reads logs");
      });

      await t.step("a pod without hostNetwork gets a loopback-only namespace", async () => {
        await k.createNamespace("locked", { "pod-security.kubernetes.io/enforce": "restricted" });
        const pod = await k.applyPod({
          metadata: { name: "own-net" },
          spec: {
            hostNetwork: false,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 1000,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [{
              name: "api",
              image: CTR_TARGET_IMAGE,
              imagePullPolicy: "Never",
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
            }],
          },
        }, "locked");
        const status = pod.status as {
          podIP: string;
          containerStatuses: { containerID: string }[];
        };
        assertEquals(status.podIP, "127.0.0.1", "pod IP");
        const id = status.containerStatuses[0].containerID.replace(/^containerd:\/\//, "");
        const task = await taskStatus(k.containerd, "k8s.io", id);
        assert(task, `task ${id}`);
        const hostNet = await Deno.readLink("/proc/self/ns/net");
        assert(await Deno.readLink(`/proc/${task.pid}/ns/net`) !== hostNet, "own netns");
        const dev = await Deno.readTextFile(`/proc/${task.pid}/net/dev`);
        const ifaces = dev.split("\n").slice(2).map((l) => l.split(":")[0].trim()).filter(Boolean);
        assertEquals(ifaces, ["lo"], "only loopback");
        // Pod Security rejects the host network there (applyPod's default when not given).
        const host = await k.kubectl(["apply", "-n", "locked", "-f", "-"], {
          stdin: JSON.stringify({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "host-net" },
            spec: {
              nodeName: "localhost",
              hostNetwork: true,
              containers: [{ name: "api", image: CTR_TARGET_IMAGE }],
            },
          }),
          check: false,
        });
        assert(/forbidden/i.test(host.stderr), `restricted forbids hostNetwork: ${host.stderr}`);
      });

      await t.step("kubectl debug attaches an ephemeral container", async () => {
        const r = await k.kubectl([
          ...["debug", "web", "--image", CTR_BUSYBOX_IMAGE, "--image-pull-policy", "Never"],
          ...["--target", "api", "-i", "--", "sh", "-c", "ps; exit 3"],
        ], { check: false });
        assert(r.stdout.includes("/app/target"), `ps shows the target: ${r.stdout}${r.stderr}`);
        // kubectl's own exit code is 0: the container's is in the pod's status.
        type Status = { name: string; state?: { terminated?: { exitCode: number } } };
        let exitCodes: (number | undefined)[] = [];
        for (let i = 0; i < 50 && exitCodes[0] === undefined; i++) {
          const pod = JSON.parse((await k.kubectl(["get", "pod", "web", "-o", "json"])).stdout);
          const statuses = (pod.status.ephemeralContainerStatuses ?? []) as Status[];
          exitCodes = statuses.map((s) => s.state?.terminated?.exitCode);
          if (exitCodes[0] === undefined) await new Promise((r) => setTimeout(r, 200));
        }
        assertEquals(exitCodes, [3], "exit code of the debug container");
      });

      await t.step("the limited user may not add ephemeral containers", async () => {
        // `can-i VERB pods/X` would ask about the pod named X: subresources need --subresource.
        const can = async (user: "admin" | "limited", verb: string, subresource?: string) => {
          const args = ["auth", "can-i", verb, "pods"];
          if (subresource) args.push("--subresource", subresource);
          return (await k.kubectl(args, { user, check: false })).stdout.trim();
        };
        assertEquals(await can("limited", "get"), "yes", "get pods");
        assertEquals(await can("limited", "get", "log"), "yes", "get pods/log");
        assertEquals(await can("limited", "create", "attach"), "yes", "create pods/attach");
        for (const verb of ["patch", "update"]) {
          const what = `${verb} pods/ephemeralcontainers`;
          assertEquals(await can("limited", verb, "ephemeralcontainers"), "no", `limited: ${what}`);
          assertEquals(await can("admin", verb, "ephemeralcontainers"), "yes", `admin: ${what}`);
        }
        const debug = await k.kubectl(
          ["debug", "web", "--image", CTR_BUSYBOX_IMAGE, "--target", "api", "--", "true"],
          { user: "limited", check: false },
        );
        assert(debug.code !== 0, "kubectl debug as limited fails");
        assert(/forbidden/i.test(debug.stderr), `forbidden: ${debug.stderr}`);
      });
    } finally {
      const ls = await k.containerd.ctr(["containers", "ls", "-q"], { namespace: "k8s.io" });
      containers.push(...ls.stdout.split("\n").filter(Boolean));
      const since = performance.now();
      await k.stop();
      console.log(`  stopped in ${secs(since)}`);
    }
    for (const d of [dir, containerdDir]) {
      assert(!await exists(d), `${d} removed`);
      assertEquals(await pidsMentioning(d), [], `no process mentioning ${d}`);
      const mountinfo = await Deno.readTextFile("/proc/self/mountinfo");
      assertEquals(mountsBelow(d, mountinfo), [], `no mount below ${d}`);
      const base = d.slice(d.lastIndexOf("/") + 1);
      for await (const h of Deno.readDir("/sys/fs/cgroup")) {
        const cg = `/sys/fs/cgroup/${h.name}/${base}`;
        assert(!await exists(cg), `${cg} removed`);
      }
      assert(!await exists(`/sys/fs/cgroup/${base}`), `cgroup ${base} removed`);
    }
    // CNI results cached by libcni for our sandboxes.
    const results = await Array.fromAsync(Deno.readDir("/var/lib/cni/results")).catch(() => []);
    const left = results.filter((e) => containers.some((id) => e.name.includes(id)));
    assertEquals(left.map((e) => e.name), [], "no cached CNI result of our sandboxes");
    try {
      for await (const e of Deno.readDir("/var/log/containers")) {
        const target = await Deno.readLink(`/var/log/containers/${e.name}`).catch(() => "");
        assert(!target.startsWith(dir + "/"), `log link ${e.name} removed`);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  },
});
