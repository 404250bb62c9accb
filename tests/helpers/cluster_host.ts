/**
 * What the private cluster (cluster.ts) sets up on the host besides its dir: the loopback-only
 * CNI plugin, the kubelet's cgroup root, and the host state the kubelet touches (recorded before
 * it starts, restored by the last cluster to stop), with the kubelets running on the host.
 *
 * @module
 */

import type { PrivateContainerd } from "./containerd.ts";
import { exists, processRunning, readPid } from "./dockerd.ts";
import { basename } from "./util.ts";

/** Prefix of the temp dirs of private clusters (used to reap leftovers of crashed runs). */
export const DIR_PREFIX = "dbgk-";

// ------------------------------------------------------------------------------------------------
// Pod network

/** File of the instance dir listing the sandboxes the CNI plugin set up (one id a line). */
const CNI_SANDBOXES = "cni-sandboxes";

/**
 * The CNI plugin (a shell script) for pods without hostNetwork: their network namespace keeps
 * only its loopback interface, up; it reports 127.0.0.1 and records the sandbox in `record`.
 * containerd's CRI calls it as `loopback` (for `lo`) and as `dbg-loopback` (the network).
 */
function cniPlugin(record: string): string {
  return `#!/bin/sh
# CNI plugin of dbg's test cluster (tests/helpers/cluster.ts): only loopback, up.
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
  ADD)
    echo "$CNI_CONTAINERID" >>'${record}'
    nsenter --net="$CNI_NETNS" ip link set lo up || exit 1
    printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],\
"ips":[{"address":"127.0.0.1/8","interface":0}]}\\n' "$CNI_IFNAME" "$CNI_NETNS" ;;
  *) : ;;
esac
`;
}

/** Installs the loopback-only CNI plugin into a containerd started with `cri`. */
export async function installCni(c: PrivateContainerd, clusterDir: string): Promise<void> {
  const script = cniPlugin(`${clusterDir}/${CNI_SANDBOXES}`);
  for (const name of ["loopback", "dbg-loopback"]) {
    await Deno.writeTextFile(`${c.dir}/cni/bin/${name}`, script, { mode: 0o755 });
  }
  const conf = { cniVersion: "1.0.0", name: "dbg-loopback", plugins: [{ type: "dbg-loopback" }] };
  await Deno.writeTextFile(`${c.dir}/cni/conf/10-dbg.conflist`, JSON.stringify(conf) + "\n");
}

// ------------------------------------------------------------------------------------------------
// Host state the kubelet touches

/** Sysctls the kubelet sets (`protectKernelDefaults: false`), relative to /proc/sys. */
const KUBELET_SYSCTLS = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
];
/** Directories the kubelet, or libcni in containerd, create whatever their configuration. */
const HOST_DIRS = [
  "/var/log/containers",
  "/var/lib/kubelet",
  "/var/lib/kubelet/device-plugins",
  "/var/lib/cni",
  "/var/lib/cni/results",
]; // outermost first
/** Where libcni caches the result of each ADD (`<network>-<container id>-<interface>`). */
const CNI_RESULTS = "/var/lib/cni/results";
/** The kubelet's device-plugin registration socket (hard-coded). */
const KUBELET_DEVICE_SOCKET = "/var/lib/kubelet/device-plugins/kubelet.sock";
/** Where the kubelet links container logs (hard-coded). */
const CONTAINER_LOG_LINKS = "/var/log/containers";

/** What the host looked like before the first live cluster's kubelet started. */
interface HostState {
  sysctls: Record<string, string>;
  createdDirs: string[];
}

/** Instance dirs of other clusters whose owner process is alive. */
async function otherLiveClusters(dir: string): Promise<string[]> {
  const live: string[] = [];
  for await (const e of Deno.readDir("/tmp")) {
    const other = `/tmp/${e.name}`;
    if (!e.isDirectory || !e.name.startsWith(DIR_PREFIX) || other === dir) continue;
    const owner = await readPid(`${other}/owner.pid`);
    if (owner !== null && processRunning(owner)) live.push(other);
  }
  return live;
}

/**
 * Records into `dir/host.json` the sysctls and kubelet directories as they are, or, when
 * another cluster is alive, as that one recorded them (the last to stop restores them).
 */
export async function recordHost(dir: string): Promise<void> {
  for (const other of await otherLiveClusters(dir)) {
    const text = await Deno.readTextFile(`${other}/host.json`).catch(() => null);
    if (text !== null) return await Deno.writeTextFile(`${dir}/host.json`, text);
  }
  const state: HostState = { sysctls: {}, createdDirs: [] };
  for (const s of KUBELET_SYSCTLS) {
    const v = await Deno.readTextFile(`/proc/sys/${s}`).catch(() => null);
    if (v !== null) state.sysctls[s] = v.trim();
  }
  for (const d of HOST_DIRS) if (!await exists(d)) state.createdDirs.push(d);
  await Deno.writeTextFile(`${dir}/host.json`, JSON.stringify(state));
}

/** Undoes the kubelet's host changes (see the module doc), once its kubelet is gone. */
export async function restoreHost(dir: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(CONTAINER_LOG_LINKS)) {
      const link = `${CONTAINER_LOG_LINKS}/${e.name}`;
      if (!e.isSymlink) continue;
      const target = await Deno.readLink(link).catch(() => "");
      if (target.startsWith(dir + "/")) await Deno.remove(link).catch(() => {});
    }
  } catch {
    // no such dir
  }
  const sandboxes = new Set(
    (await Deno.readTextFile(`${dir}/${CNI_SANDBOXES}`).catch(() => "")).split("\n")
      .filter(Boolean),
  );
  try {
    for await (const e of Deno.readDir(CNI_RESULTS)) {
      const id = /-([0-9a-f]{64})-[^-]+$/.exec(e.name)?.[1];
      if (id && sandboxes.has(id)) await Deno.remove(`${CNI_RESULTS}/${e.name}`).catch(() => {});
    }
  } catch {
    // no such dir
  }
  const text = await Deno.readTextFile(`${dir}/host.json`).catch(() => null);
  if (text === null || (await otherLiveClusters(dir)).length > 0) return;
  if ((await kubelets()).length > 0) return; // one not of these helpers (ours is gone)
  const state = JSON.parse(text) as HostState;
  for (const [s, v] of Object.entries(state.sysctls)) {
    const now = await Deno.readTextFile(`/proc/sys/${s}`).catch(() => v);
    if (now.trim() !== v) await Deno.writeTextFile(`/proc/sys/${s}`, v).catch(() => {});
  }
  if (state.createdDirs.length === 0) return;
  await Deno.remove(KUBELET_DEVICE_SOCKET).catch(() => {});
  // Only if empty: rmdir semantics.
  for (const d of [...state.createdDirs].reverse()) await Deno.remove(d).catch(() => {});
}

/** Running kubelets: pid and `--root-dir` (empty when not given). */
async function kubelets(): Promise<{ pid: number; rootDir: string }[]> {
  const found: { pid: number; rootDir: string }[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
      if (basename(argv[0]) !== "kubelet" || !processRunning(pid)) continue;
      const i = argv.findIndex((a) => a === "--root-dir" || a.startsWith("--root-dir="));
      const rootDir = i < 0 ? "" : argv[i].includes("=") ? argv[i].split("=")[1] : argv[i + 1];
      found.push({ pid, rootDir: rootDir ?? "" });
    } catch {
      // process gone
    }
  }
  return found;
}

/**
 * Running kubelets of real nodes: those with the default root dir /var/lib/kubelet. Ours would
 * wipe their device-plugin sockets.
 */
export async function foreignKubelets(): Promise<number[]> {
  return (await kubelets()).filter((k) =>
    ["", "/var/lib/kubelet"].includes(k.rootDir.replace(/\/+$/, ""))
  )
    .map((k) => k.pid);
}

// ------------------------------------------------------------------------------------------------
// Cgroups

/** Cgroup hierarchies: each v1 controller dir (and the named/unified ones), or the v2 root. */
async function cgroupRoots(): Promise<string[]> {
  if (await exists("/sys/fs/cgroup/cgroup.controllers")) return ["/sys/fs/cgroup"];
  const roots: string[] = [];
  for await (const e of Deno.readDir("/sys/fs/cgroup")) {
    const root = `/sys/fs/cgroup/${e.name}`;
    if (e.isDirectory && await exists(`${root}/cgroup.procs`)) roots.push(root);
  }
  return roots;
}

/** Creates the kubelet's cgroup root `/<name>` in every hierarchy (it insists on each). */
export async function createCgroupRoot(name: string): Promise<void> {
  for (const root of await cgroupRoots()) {
    await Deno.mkdir(`${root}/${name}`, { recursive: true });
    if (root !== "/sys/fs/cgroup") continue;
    // cgroup v2: hand the controllers of the root on to the kubelet's cgroups.
    const controllers = (await Deno.readTextFile(`${root}/cgroup.subtree_control`)).trim();
    const enable = controllers.split(/\s+/).filter(Boolean).map((c) => `+${c}`).join(" ");
    if (enable) await Deno.writeTextFile(`${root}/${name}/cgroup.subtree_control`, enable);
  }
}

export async function cgroupRootLeft(name: string): Promise<boolean> {
  for (const root of await cgroupRoots()) if (await exists(`${root}/${name}`)) return true;
  return false;
}
