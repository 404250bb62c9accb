/**
 * Debugging a containerd container without a running task through a throwaway copy: a new
 * container with the original's spec (env, working dir, user, mounts), the keeper as its
 * process (runtimes/_keeper.ts, bind-mounted read-only from a directory of dbg's), fresh
 * namespaces (no network), and a new snapshot on the original's parent. With overlayfs the
 * original's upper directory, which holds its own changes, is stacked read-only under the
 * copy's: the copy sees them, and the original is never written. The sidecar then joins the
 * copy's task as it joins any running target.
 *
 * @module
 */

import type { TargetCopy } from "../../lib/adapter.ts";
import { DbgError } from "../../lib/errors.ts";
import type { DebugPlan } from "../../lib/plan.ts";
import { delay } from "../../lib/signals.ts";
import { KEEPER_DIR, KEEPER_PATH, keeperArch, keeperElf } from "../_keeper.ts";
import { Steps } from "../_steps.ts";
import { Code, type ContainerdClient, ContainerdError, type Message } from "./client.ts";
import { hostArch } from "./image.ts";
import type { ContainerRecord } from "./target.ts";

const CONTAINERS = "containerd.services.containers.v1.Containers";
const TASKS = "containerd.services.tasks.v1.Tasks";
const SNAPSHOTS = "containerd.services.snapshots.v1.Snapshots";
const LEASES = "containerd.services.leases.v1.Leases";
const SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/** The namespaces a copy gets, all of them new: its own PID 1, IPC, and no network. */
const FRESH = ["pid", "ipc", "uts", "mount", "network"];

/** The networks a copy can have here: its own with loopback only, or the host's. */
const NETWORKS = ["none", "host"];

/**
 * Make and start the copy that `plan.copy` describes; returns it and its task's host PID. On
 * failure, or once `stop` is aborted, what was made is removed before this throws.
 */
export async function createContainerdCopy(
  client: ContainerdClient,
  plan: DebugPlan,
  stop: AbortSignal,
  o: {
    original: ContainerRecord;
    /** The original's upper directory, stacked under the copy's (see target.ts upperDir). */
    upper?: string;
    debug: (msg: string) => void;
  },
): Promise<{ copy: TargetCopy; hostPid: number }> {
  const copy = plan.copy;
  if (!copy) throw new Error("createContainerdCopy without plan.copy");
  const orig = o.original;
  const id = copy.name;
  const ns = { namespace: orig.namespace };
  const snapshotter = orig.snapshotter || "overlayfs";
  const steps = new Steps(
    stop,
    (e, what) =>
      new DbgError(`Cannot debug a copy of ${orig.id}: ${what} failed: ${e}`, {
        hint: "Run with --debug for details",
        cause: e,
      }),
  );
  if (!NETWORKS.includes(copy.network)) {
    throw new DbgError(`A containerd copy cannot join network ${copy.network}`, {
      hint: "Pass --network none (the default: loopback only) or --network host",
    });
  }
  try {
    const arch = keeperArch(hostArch());
    if (!arch) throw new DbgError(`dbg cannot copy a container on ${hostArch()}`);
    const dir = await steps.run(
      "making the keeper's directory",
      () => Deno.makeTempDir({ prefix: "dbg-copy-" }),
      (dir) => Deno.remove(dir, { recursive: true }),
    );
    await steps.run("writing the keeper", async () => {
      // The keeper runs as the original's user: the directory is the mount's root.
      await Deno.chmod(dir, 0o755);
      await Deno.writeFile(`${dir}/keeper`, keeperElf(arch), { mode: 0o755 });
    });
    const expire = new Date(Date.now() + 24 * 3600_000).toISOString();
    await steps.run(
      "creating a lease",
      () =>
        client.call(LEASES, "Create", { id, labels: { "containerd.io/gc.expire": expire } }, ns),
      () => client.call(LEASES, "Delete", { id }, ns),
    );
    const parent = await steps.run("reading the container's snapshot", async () => {
      if (!orig.snapshotKey) return "";
      const res = await client.call(SNAPSHOTS, "Stat", { snapshotter, key: orig.snapshotKey }, ns);
      return String((res.info as Message | undefined)?.parent ?? "");
    });
    const prepared = await steps.run(
      "preparing the copy's snapshot",
      () =>
        client.call(SNAPSHOTS, "Prepare", { snapshotter, key: id, parent }, { ...ns, lease: id }),
      () => client.call(SNAPSHOTS, "Remove", { snapshotter, key: id }, ns),
    );
    const mounts = stackUpper((prepared.mounts ?? []) as RootMount[], o.upper);
    const spec = copySpec(orig.spec as Record<string, unknown> | undefined ?? {}, {
      present: await presentBinds(orig, o.debug),
      keeperDir: dir,
      cgroupsPath: `/${orig.namespace}/${id}`,
      readOnly: copy.readOnly,
      hostNetwork: copy.network === "host",
    });
    await steps.run(
      "creating the copy",
      () =>
        client.call(CONTAINERS, "Create", {
          container: {
            id,
            labels: { "dbg.session": plan.runId, "dbg.copy-of": orig.id },
            image: orig.image,
            runtime: { name: "io.containerd.runc.v2" },
            spec: { type_url: SPEC_TYPE, value: new TextEncoder().encode(JSON.stringify(spec)) },
            snapshotter,
            snapshot_key: id,
          },
        }, { ...ns, lease: id }),
      () => client.call(CONTAINERS, "Delete", { id }, ns),
    );
    await steps.run(
      "creating the copy's task",
      () => client.call(TASKS, "Create", { container_id: id, rootfs: mounts }, ns),
      () => deleteTask(client, id, ns),
    );
    const started = await steps.run(
      "starting the copy",
      () => client.call(TASKS, "Start", { container_id: id }, ns),
    );
    const hostPid = Number(started.pid);
    o.debug(`copy ${id}: task pid ${hostPid}, keeper for ${arch}`);
    return { copy: { remove: () => steps.undo() }, hostPid };
  } catch (e) {
    await steps.undo().catch((r) => o.debug(`removing the copy after a failure: ${r}`));
    throw e;
  }
}

/** A mount of a snapshot, as containerd returns it. */
interface RootMount {
  type?: string;
  source?: string;
  options?: string[];
}

/**
 * The copy's root mounts: an overlay gets the original's upper directory as its topmost lower
 * layer, read-only, so the copy sees the original's changes and writes only into its own.
 */
export function stackUpper(mounts: RootMount[], upper: string | undefined): RootMount[] {
  if (!upper) return mounts;
  return mounts.map((m) => {
    if (m.type !== "overlay") return m;
    const options = (m.options ?? []).map((opt) =>
      opt.startsWith("lowerdir=") ? `lowerdir=${upper}:${opt.slice("lowerdir=".length)}` : opt
    );
    return { ...m, options };
  });
}

/**
 * The copy's OCI spec: the original's, with the keeper as its process (no capabilities, no
 * terminal), the keeper's directory bind-mounted read-only, new namespaces, dbg's cgroup, and
 * no hooks or annotations (a hook would run on the host; CRI's annotations group tasks into
 * their pod's shim).
 */
export function copySpec(
  original: Record<string, unknown>,
  o: {
    keeperDir: string;
    cgroupsPath: string;
    readOnly: boolean;
    /** Whether a bind mount's source is still there (a deleted pod's files are not). */
    present: (source: string) => boolean;
    /** The host's network instead of a new namespace with loopback only. */
    hostNetwork?: boolean;
  },
): Record<string, unknown> {
  const spec = structuredClone(original) as {
    process?: Record<string, unknown>;
    mounts?: Array<{ destination: string; type?: string; source?: string; options?: string[] }>;
    linux?: { namespaces?: Array<{ type: string; path?: string }>; [k: string]: unknown };
    [k: string]: unknown;
  };
  delete spec.hooks;
  delete spec.annotations;
  const none: string[] = [];
  spec.process = {
    ...spec.process,
    args: [KEEPER_PATH],
    terminal: false,
    capabilities: { bounding: none, effective: none, permitted: none },
    noNewPrivileges: true,
  };
  delete spec.process.consoleSize;
  spec.root = { path: "rootfs", readonly: o.readOnly };
  spec.mounts = [
    ...(spec.mounts ?? []).filter((m) =>
      m.destination !== KEEPER_DIR && (m.type !== "bind" || o.present(m.source ?? ""))
    ),
    {
      destination: KEEPER_DIR,
      type: "bind",
      source: o.keeperDir,
      options: ["rbind", "ro", "nosuid", "nodev"],
    },
  ];
  // Namespaces: new ones of the kinds a copy must own; the others as the original's, but never
  // by path (another process's, which a copy must not join).
  const kept = (spec.linux?.namespaces ?? []).filter((n) => !FRESH.includes(n.type))
    .map((n) => ({ type: n.type }));
  const fresh = FRESH.filter((type) => !(o.hostNetwork && type === "network"));
  spec.linux = {
    ...spec.linux,
    namespaces: [...fresh.map((type) => ({ type })), ...kept],
    cgroupsPath: o.cgroupsPath,
  };
  return spec;
}

/** The sources of the original's bind mounts that are still there (dbg runs on its host). */
async function presentBinds(
  c: ContainerRecord,
  debug: (msg: string) => void,
): Promise<(source: string) => boolean> {
  const present = new Set<string>();
  for (const m of c.spec?.mounts ?? []) {
    if (m.type !== "bind" || !m.source) continue;
    if (await Deno.stat(m.source).then(() => true, () => false)) present.add(m.source);
    else debug(`copy: leaving out the mount of ${m.source} at ${m.destination}: it is gone`);
  }
  return (source) => present.has(source);
}

/**
 * Kill the task and delete it once it has stopped (none: nothing to do). One that has `ended`
 * is deleted at once, and killed only if that fails.
 */
export async function deleteTask(
  client: ContainerdClient,
  id: string,
  ns: { namespace: string },
  ended = false,
): Promise<void> {
  if (ended) {
    try {
      return void await client.call(TASKS, "Delete", { container_id: id }, ns);
    } catch (e) {
      if (e instanceof ContainerdError && e.code === Code.NOT_FOUND) return;
    }
  }
  await client.call(TASKS, "Kill", { container_id: id, signal: 9, all: true }, ns)
    .catch(() => {});
  for (let i = 0; i < 30; i++) {
    try {
      await client.call(TASKS, "Delete", { container_id: id }, ns);
      return;
    } catch (e) {
      if (e instanceof ContainerdError && e.code === Code.NOT_FOUND) return;
      if (i === 29) throw e;
      await delay(100); // not stopped yet
    }
  }
}
