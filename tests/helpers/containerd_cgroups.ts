/**
 * Cgroups of a private containerd's containers (containerd.ts): the cgroup parent of the
 * containers the helpers start, the cgroups of an instance's bundles, the processes in them and
 * their removal (also used by cluster*.ts for the kubelet's cgroup root).
 *
 * @module
 */

import { exists } from "./dockerd.ts";
import { basename } from "./util.ts";

/** Cgroup parent of the containers this helper starts: `/<basename of the instance dir>`. */
export function cgroupParent(dir: string): string {
  return `/${basename(dir)}`;
}

/**
 * Cgroup paths of the instance's containers: the cgroup parent of this helper plus the
 * `linux.cgroupsPath` of every bundle in the state dir (containers other code created there).
 */
export async function containerCgroups(dir: string): Promise<string[]> {
  const paths = new Set([cgroupParent(dir)]);
  const tasks = `${dir}/state/io.containerd.runtime.v2.task`;
  try {
    for await (const ns of Deno.readDir(tasks)) {
      for await (const c of Deno.readDir(`${tasks}/${ns.name}`)) {
        try {
          const spec = JSON.parse(
            await Deno.readTextFile(`${tasks}/${ns.name}/${c.name}/config.json`),
          );
          const p = spec?.linux?.cgroupsPath;
          // Only `/<parent>/<name>` or deeper: never kill a whole shared top-level cgroup.
          if (typeof p === "string" && /^(\/[^/]+){2,}$/.test(p)) paths.add(p);
        } catch {
          // no spec (yet)
        }
      }
    }
  } catch {
    // no state dir
  }
  return [...paths];
}

/** PIDs of processes in any of the cgroup `paths` (or below them), in any hierarchy. */
export async function pidsInCgroups(paths: string[]): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    try {
      const lines = (await Deno.readTextFile(`/proc/${pid}/cgroup`)).split("\n");
      const inside = lines.some((l) => {
        const p = l.split(":").slice(2).join(":");
        return paths.some((c) => p === c || p.startsWith(c + "/"));
      });
      if (inside) pids.push(pid);
    } catch {
      // process gone
    }
  }
  return pids;
}

/** Removes the (empty) cgroup dirs at and below each of `paths`, in every hierarchy. */
export async function removeCgroups(paths: string[]): Promise<void> {
  const roots = ["/sys/fs/cgroup"];
  try {
    for await (const e of Deno.readDir("/sys/fs/cgroup")) {
      if (e.isDirectory) roots.push(`/sys/fs/cgroup/${e.name}`);
    }
  } catch {
    return;
  }
  for (const root of roots) {
    for (const p of paths) {
      const top = `${root}${p}`;
      if (!await exists(`${top}/cgroup.procs`)) continue;
      const dirs: string[] = [];
      const walk = async (d: string) => {
        dirs.push(d);
        for await (const e of Deno.readDir(d)) if (e.isDirectory) await walk(`${d}/${e.name}`);
      };
      await walk(top).catch(() => {});
      dirs.sort((a, b) => b.length - a.length);
      for (const d of dirs) await Deno.remove(d).catch(() => {});
    }
  }
}
