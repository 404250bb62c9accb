/**
 * Finding the target on containerd: by full id, unique id prefix, nerdctl name, or
 * POD/CONTAINER through the Kubernetes CRI labels, in one namespace or across all of them
 * (issue 3). The matching is pure; the lookups are thin calls on the client.
 *
 * @module
 */

import type { TargetFacts } from "../../lib/adapter.ts";
import { endedText } from "../../lib/ended.ts";
import { DbgError, noSuchTarget, targetNotRunning } from "../../lib/errors.ts";
import { hostProcessUser } from "../_host.ts";
import { capsDelta } from "./spec.ts";
import { Code, type ContainerdClient, ContainerdError, type Message } from "./client.ts";

const CONTAINERS = "containerd.services.containers.v1.Containers";
const TASKS = "containerd.services.tasks.v1.Tasks";
const NAMESPACES = "containerd.services.namespaces.v1.Namespaces";
const SNAPSHOTS = "containerd.services.snapshots.v1.Snapshots";

/** What dbg needs of a container record. */
export interface ContainerRecord {
  namespace: string;
  id: string;
  labels: Record<string, string>;
  image: string;
  snapshotter: string;
  /** The key of the container's own (active) snapshot: its root filesystem. */
  snapshotKey: string;
  /** The OCI runtime spec (JSON in an Any). */
  spec?: OciSpec;
}

/** The parts of the OCI runtime spec dbg reads. */
export interface OciSpec {
  process?: {
    user?: { uid?: number; gid?: number };
    env?: string[];
    cwd?: string;
    args?: string[];
    capabilities?: { effective?: string[] };
  };
  root?: { readonly?: boolean };
  mounts?: Array<{ destination: string; type?: string; source?: string; options?: string[] }>;
  linux?: { namespaces?: Array<{ type: string; path?: string }> };
}

/** A container's name as a user would type it: nerdctl name, or pod/container from CRI. */
export function displayName(c: Pick<ContainerRecord, "id" | "labels">): string {
  const pod = c.labels["io.kubernetes.pod.name"];
  const ctr = c.labels["io.kubernetes.container.name"];
  if (pod && ctr) return `${pod}/${ctr}`;
  return c.labels["nerdctl/name"] ?? c.id;
}

/**
 * The containers that `ref` names: exact id, nerdctl name, POD/CONTAINER (CRI labels, pod
 * namespace if given), or else a unique id prefix.
 */
export function matchContainers(
  all: ContainerRecord[],
  ref: string,
  opts: { podNamespace?: string } = {},
): ContainerRecord[] {
  const exact = all.filter((c) => c.id === ref || c.labels["nerdctl/name"] === ref);
  if (exact.length) return exact;
  const slash = ref.indexOf("/");
  if (slash > 0) {
    const [pod, ctr] = [ref.slice(0, slash), ref.slice(slash + 1)];
    const byPod = all.filter((c) =>
      c.labels["io.kubernetes.pod.name"] === pod &&
      c.labels["io.kubernetes.container.name"] === ctr &&
      (!opts.podNamespace || c.labels["io.kubernetes.pod.namespace"] === opts.podNamespace)
    );
    if (byPod.length) return byPod;
  }
  return all.filter((c) => c.id.startsWith(ref));
}

function record(namespace: string, c: Message): ContainerRecord {
  const any = c.spec as { value?: Uint8Array } | undefined;
  let spec: OciSpec | undefined;
  if (any?.value?.length) {
    try {
      spec = JSON.parse(new TextDecoder().decode(any.value));
    } catch {
      spec = undefined;
    }
  }
  return {
    namespace,
    id: String(c.id),
    labels: (c.labels ?? {}) as Record<string, string>,
    image: String(c.image ?? ""),
    snapshotter: String(c.snapshotter ?? ""),
    snapshotKey: String(c.snapshot_key ?? ""),
    spec,
  };
}

/** Every container in `namespace` (or in every namespace). */
export async function listContainers(
  client: ContainerdClient,
  namespace?: string,
): Promise<ContainerRecord[]> {
  const list = async (ns: string) => {
    const res = await client.call(CONTAINERS, "List", {}, { namespace: ns });
    return ((res.containers ?? []) as Message[]).map((c) => record(ns, c));
  };
  // A named namespace is asked at once; only an empty answer needs to know whether it exists.
  const named = namespace ? await list(namespace) : [];
  if (named.length > 0) return named;
  const known = await listNamespaces(client);
  if (namespace && !known.includes(namespace)) {
    throw new DbgError(
      `containerd has no namespace ${namespace} (it has: ${known.join(", ") || "none"})`,
      {
        hint: "Pick one with -n/--namespace, or leave -n out to search them all",
      },
    );
  }
  if (namespace) return named;
  return (await Promise.all(known.map(list))).flat();
}

export async function listNamespaces(client: ContainerdClient): Promise<string[]> {
  const res = await client.call(NAMESPACES, "List", {});
  return ((res.namespaces ?? []) as Array<{ name: string }>).map((n) => n.name);
}

/**
 * Resolve `ref` to one container and its facts. A container whose task is missing, created or
 * stopped comes back with `hostPid` 0, to be debugged through a copy (containerd/copy.ts), and
 * with the upper directory of its snapshot where the copy can keep its changes.
 */
export async function resolveTarget(
  client: ContainerdClient,
  ref: string,
  opts: { namespace?: string; podNamespace?: string } = {},
): Promise<{ container: ContainerRecord; facts: TargetFacts; hostPid: number; upper?: string }> {
  // With -n, the task of a container whose id is `ref` is asked beside the list (ctr's ids are
  // names): most runs then wait for one round trip, not two.
  const taskOf = (id: string, namespace: string) =>
    client.call(TASKS, "Get", { container_id: id }, { namespace }).then(
      (r) => r.process as Message | undefined,
      (e) => {
        if (e instanceof ContainerdError && e.code === Code.NOT_FOUND) return undefined;
        throw e;
      },
    );
  const early = opts.namespace ? taskOf(ref, opts.namespace) : undefined;
  early?.catch(() => {}); // (awaited below only when its container is the one)
  const all = await listContainers(client, opts.namespace);
  const found = matchContainers(all, ref, opts);
  const nsHint = opts.namespace ? ` -n ${opts.namespace}` : "";
  if (found.length === 0) {
    const names = all.map((c) => `${c.namespace}:${displayName(c)}`);
    throw noSuchTarget(ref, names, `ctr${nsHint} tasks ls`);
  }
  if (found.length > 1) {
    const names = found.map((c) => `${c.namespace}:${c.id.slice(0, 12)} (${displayName(c)})`);
    throw new DbgError(`${ref} matches ${found.length} containers: ${names.join(", ")}`, {
      hint: "Pass a longer id, or pick the namespace with -n/--namespace",
    });
  }
  const c = found[0];
  const task =
    await (early && c.id === ref && c.namespace === opts.namespace
      ? early
      : taskOf(c.id, c.namespace));
  if (task?.status === "PAUSED" || task?.status === "PAUSING") {
    const how = `ctr -n ${c.namespace} task resume ${c.id}`;
    throw targetNotRunning(displayName(c), String(task.status).toLowerCase(), how);
  }
  if (task?.status !== "RUNNING") {
    const upper = await upperDir(client, c);
    return { container: c, facts: stoppedFacts(c, task, !!upper), hostPid: 0, upper };
  }
  const hostPid = Number(task.pid);
  const facts = factsOf(c, hostPid);
  // containerd runs on this host: the live user beats the spec's (a target that dropped root).
  const live = hostProcessUser(hostPid, c.id);
  if (live) {
    facts.user = live.user;
    if (live.userNamespace) facts.userNamespace = live.userNamespace;
  }
  return { container: c, facts, hostPid };
}

/** The facts of a copy of a container that has no running task (see containerd/copy.ts). */
export function stoppedFacts(
  c: ContainerRecord,
  task: Message | undefined,
  keeps: boolean,
): TargetFacts {
  const exited = task?.exited_at as { seconds?: number } | undefined;
  const ended = !task
    ? "has no task (never started, or its task was deleted)"
    : task.status === "STOPPED"
    ? endedText({
      code: Number(task.exit_status),
      at: exited?.seconds ? new Date(exited.seconds * 1000).toISOString() : undefined,
    })
    : "has a task that was created and never started";
  return {
    ...factsOf(c, 0),
    running: false,
    state: task ? String(task.status).toLowerCase() : "no task",
    // The copy owns its PID namespace (whose PID 1 is the keeper) and shares its IPC.
    pid: 1,
    pidNamespace: "private",
    ipc: "shareable",
    copy: {
      ended,
      entrypoint: c.spec?.process?.args ?? [],
      volumes: (c.spec?.mounts ?? []).some((m) => m.type === "bind"),
      ...(keeps ? {} : { lost: "its own filesystem changes" }),
    },
  };
}

/**
 * The directory that holds a container's own changes, where a copy can keep them: an overlay
 * snapshot's upper directory, which the copy stacks, read-only, under a fresh one of its own.
 * Other snapshotters keep changes in ways a copy cannot share: undefined.
 */
async function upperDir(
  client: ContainerdClient,
  c: Pick<ContainerRecord, "namespace" | "snapshotter" | "snapshotKey">,
): Promise<string | undefined> {
  if (!c.snapshotKey) return undefined;
  const res = await client.call(SNAPSHOTS, "Mounts", {
    snapshotter: c.snapshotter || "overlayfs",
    key: c.snapshotKey,
  }, { namespace: c.namespace }).catch(() => ({}) as Message);
  const [m] = (res.mounts ?? []) as Array<{ type?: string; options?: string[] }>;
  if (m?.type !== "overlay") return undefined;
  return m.options?.find((o) => o.startsWith("upperdir="))?.slice("upperdir=".length);
}

/** TargetFacts from the container's OCI spec and its task's host PID. */
export function factsOf(c: ContainerRecord, hostPid: number): TargetFacts {
  const ns = c.spec?.linux?.namespaces ?? [];
  const pidNs = ns.find((n) => n.type === "pid");
  const pidNamespace = !pidNs ? "host" : pidNs.path ? "shared" : "private";
  const user = c.spec?.process?.user;
  const ipc = ns.find((n) => n.type === "ipc");
  return {
    id: c.id,
    name: displayName(c),
    running: true,
    state: "running",
    // The sidecar joins the task's namespaces by /proc/<host pid>/ns/*: PID 1 when the target
    // owns its PID namespace, else the search by cgroup inside the sidecar.
    pid: pidNamespace === "private" ? 1 : pidNamespace === "host" ? hostPid : 0,
    pidNamespace,
    user: user ? `${user.uid ?? 0}:${user.gid ?? 0}` : "",
    readOnlyRootfs: !!c.spec?.root?.readonly,
    privileged: false,
    caps: capsDelta(c.spec?.process?.capabilities?.effective ?? []),
    cwd: c.spec?.process?.cwd || "/",
    // Joined by path, any IPC namespace can be shared; a host one is joined as the host's.
    ipc: !ipc ? "host" : "shareable",
  };
}
