/**
 * Target containers run with ctr in a private containerd (containerd.ts): starting them, their
 * task status and log, and the upper layer of their rootfs snapshot.
 *
 * @module
 */

import type { PrivateContainerd } from "./containerd.ts";
import { cgroupParent } from "./containerd_cgroups.ts";
import { CTR_TARGET_IMAGE, loadImagesInto, targetImageForUser } from "./containerd_images.ts";
import { sleep } from "./util.ts";

/** How to run a target container with ctr. */
export interface CtrTargetOpts {
  /** containerd namespace (e.g. `default`, or `k8s.io` to mimic Kubernetes). */
  namespace: string;
  /** Container id (also the task id and snapshot key). */
  id: string;
  /** User, e.g. `1000:1000` (through a copy of the image, see {@link targetImageForUser}). */
  user?: string;
  /** Read-only rootfs (`ctr run --read-only`: `root.readonly` in the spec). */
  readOnly?: boolean;
  /** Container labels, e.g. `io.kubernetes.pod.name`. */
  labels?: Record<string, string>;
  /** More `ctr run` flags, e.g. `--net-host`, `--with-ns pid:/proc/1/ns/pid`. */
  flags?: string[];
  /** The target's argv instead of the image's (e.g. `/app/target --drop 1000:1000`). */
  args?: string[];
}

/** Status and pid of task `id` from `ctr tasks ls` (null when there is no such task). */
export async function taskStatus(
  c: PrivateContainerd,
  namespace: string,
  id: string,
): Promise<{ pid: number; status: string } | null> {
  const out = (await c.ctr(["tasks", "ls"], { namespace })).stdout;
  for (const line of out.split("\n").slice(1)) {
    const [task, pid, status] = line.trim().split(/\s+/);
    if (task === id) return { pid: Number(pid), status };
  }
  return null;
}

/** Path of the stdout/stderr log of a target started by {@link runCtrTarget}. */
export function targetLog(c: PrivateContainerd, namespace: string, id: string): string {
  return `${c.dir}/logs/${namespace}-${id}.log`;
}

/**
 * Runs `dbg-test/target:latest` detached (`ctr run -d`): its own network namespace with only
 * loopback (ctr creates one unless `--net-host`; no CNI), output to a log file, cgroup
 * `/<instance>/<ns>/<id>`. Waits until the task is RUNNING and has printed "target started".
 */
export async function runCtrTarget(
  c: PrivateContainerd,
  o: CtrTargetOpts,
): Promise<{ id: string; pid: number }> {
  let image = CTR_TARGET_IMAGE;
  if (o.user) image = await targetImageForUser(c, o.namespace, o.user);
  else await loadImagesInto(c, o.namespace);
  const log = targetLog(c, o.namespace, o.id);
  const args = ["run", "-d", "--snapshotter", c.snapshotter, "--log-uri", `file://${log}`];
  args.push("--cgroup", `${cgroupParent(c.dir)}/${o.namespace}/${o.id}`);
  if (o.readOnly) args.push("--read-only");
  for (const [k, v] of Object.entries(o.labels ?? {})) args.push("--label", `${k}=${v}`);
  args.push(...o.flags ?? [], image, o.id, ...o.args ?? []);
  await c.ctr(args, { namespace: o.namespace });
  const deadline = Date.now() + 10_000;
  while (true) {
    const st = await taskStatus(c, o.namespace, o.id);
    const out = await Deno.readTextFile(log).catch(() => "");
    if (st?.status === "RUNNING" && out.includes("target started")) {
      return { id: o.id, pid: st.pid };
    }
    if (st?.status === "STOPPED" || Date.now() > deadline) {
      throw new Error(
        `ctr target ${o.namespace}/${o.id} did not start (task ${st?.status ?? "missing"}): ${out}`,
      );
    }
    await sleep(50);
  }
}

/** Every path in the upper (written) layer of a container's rootfs snapshot. */
export async function upperListing(
  c: { ctr(args: string[], o?: { namespace?: string }): Promise<{ stdout: string }> },
  id: string,
  namespace = "default",
): Promise<string[]> {
  const mounts = (await c.ctr(["snapshots", "mounts", "/mnt", id], { namespace })).stdout;
  const upper = /upperdir=([^,\s]+)/.exec(mounts)?.[1];
  if (!upper) throw new Error(`no upperdir in: ${mounts}`);
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of Deno.readDirSync(dir)) {
      out.push(`${rel}/${e.name}`);
      if (e.isDirectory) walk(`${dir}/${e.name}`, `${rel}/${e.name}`);
    }
  };
  walk(upper, "");
  return out.sort();
}
