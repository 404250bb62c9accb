/**
 * Teardown of a private containerd (containerd.ts): removing its tasks and containers, killing
 * its daemon, shims and container processes, cleaning its cgroups, shim sockets and mounts, and
 * reaping the instance dirs of crashed runs.
 *
 * @module
 */

import { containerCgroups, pidsInCgroups, removeCgroups } from "./containerd_cgroups.ts";
import {
  killAll,
  pidsMentioning,
  processRunning,
  reapStaleDirs,
  sh,
  type ShResult,
  unmountBelow,
  waitGone,
} from "./dockerd.ts";
import { basename, sha256Hex } from "./util.ts";

/** Where containerd 1.6 puts shim sockets whatever its `state` is (`/run/containerd/s/<hash>`). */
const SHIM_SOCKET_DIR = "/run/containerd/s";

/** Prefix of the temp dirs of private containerds (used to reap leftovers of crashed runs). */
export const DIR_PREFIX = "dbgc-";

/** A shim of an instance, from its command line (`-namespace ns -id id -address sock`). */
interface ShimInfo {
  pid: number;
  namespace: string;
  id: string;
  address: string;
}

async function shimsOf(dir: string): Promise<ShimInfo[]> {
  const shims: ShimInfo[] = [];
  for (const pid of await pidsMentioning(dir)) {
    try {
      const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
      if (!basename(argv[0]).startsWith("containerd-shim")) continue;
      const opt = (name: string) => {
        const i = argv.indexOf(name);
        return i >= 0 ? argv[i + 1] ?? "" : "";
      };
      shims.push({ pid, namespace: opt("-namespace"), id: opt("-id"), address: opt("-address") });
    } catch {
      // process gone
    }
  }
  return shims;
}

/** Stops every process of an instance dir, cleans its cgroups and shim sockets, removes it. */
export async function teardownDir(dir: string, daemonPid: number | null): Promise<void> {
  const shims = await shimsOf(dir);
  const cgroups = await containerCgroups(dir);
  if (daemonPid !== null && processRunning(daemonPid)) {
    killAll([daemonPid], "SIGTERM");
    if (!await waitGone([daemonPid], 10_000)) killAll([daemonPid], "SIGKILL");
    await waitGone([daemonPid], 5_000);
  }
  const rest = await pidsMentioning(dir);
  killAll(rest, "SIGKILL");
  await waitGone(rest, 5_000);
  // Killed shims leave their containers' processes running: find them by their cgroup.
  const inContainers = await pidsInCgroups(cgroups);
  killAll(inContainers, "SIGKILL");
  await waitGone(inContainers, 5_000);
  for (const s of shims) {
    // containerd 1.6: sha256(filepath.Join(<containerd address>, <namespace>, <id>)).
    const hash = await sha256Hex(`${s.address}/${s.namespace}/${s.id}`.replace(/\/+/g, "/"));
    await Deno.remove(`${SHIM_SOCKET_DIR}/${hash}`).catch(() => {});
  }
  await unmountBelow(dir);
  await removeCgroups(cgroups);
  await Deno.remove(dir, { recursive: true }).catch(async () => {
    await sh(["rm", "-rf", dir], { check: false });
  });
}

/** Removes instance dirs left by crashed runs (their owner process is gone). */
export function reapStale(): Promise<void> {
  return reapStaleDirs(DIR_PREFIX, "containerd.pid", teardownDir);
}

/** Kills and deletes all tasks, then deletes all containers (and their snapshots), in all ns. */
export async function removeEverything(
  run: (args: string[], namespace: string) => Promise<ShResult>,
): Promise<void> {
  const list = async (args: string[], namespace = "default") =>
    (await run(args, namespace)).stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  for (const ns of await list(["namespaces", "ls", "-q"])) {
    const tasks = await list(["tasks", "ls", "-q"], ns);
    await Promise.all(tasks.map((id) => run(["tasks", "rm", "-f", id], ns)));
    const containers = await list(["containers", "ls", "-q"], ns);
    if (containers.length > 0) await run(["containers", "rm", ...containers], ns);
  }
}
