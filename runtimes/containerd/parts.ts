/**
 * What dbg sessions made on containerd, for `dbg sessions` and `dbg gc`: in every namespace,
 * the containers labelled `dbg.session` (sidecars and copies, each with its task, snapshot and
 * lease of the same id), leases named `dbg-…` that lost their container (a dbg killed while
 * it created one), and the FIFO dirs in this host's temp dir of the sessions found. A running
 * sidecar is held while its lifeline exec runs (lib/kill.ts). A part's `ref` is
 * `container:NS:ID:SNAPSHOTTER`, `lease:NS:ID`, `fifo:PATH` or a nix link's (runtimes/_host.ts).
 *
 * @module
 */

import type { SessionPart } from "../../lib/adapter.ts";
import { hostNixLink, leftLink, removeLinks } from "../_host.ts";
import type { ContainerdClient, Message } from "./client.ts";
import { deleteTask } from "./copy.ts";
import { LIFELINE_EXEC } from "./sidecar.ts";
import { listNamespaces } from "./target.ts";

const CONTAINERS = "containerd.services.containers.v1.Containers";
const TASKS = "containerd.services.tasks.v1.Tasks";
const SNAPSHOTS = "containerd.services.snapshots.v1.Snapshots";
const LEASES = "containerd.services.leases.v1.Leases";
/** Leases that hold pulled images stay, as after `ctr images pull`. */
const IMAGE_LEASE = /^dbg-image-/;

/** Every dbg part on this containerd. */
export async function containerdParts(client: ContainerdClient): Promise<SessionPart[]> {
  const parts: SessionPart[] = [];
  for (const ns of await listNamespaces(client)) {
    const opts = { namespace: ns };
    const [containers, tasks, leases] = await Promise.all([
      client.call(CONTAINERS, "List", { filters: ['labels."dbg.session"'] }, opts),
      client.call(TASKS, "List", {}, opts),
      client.call(LEASES, "List", {}, opts),
    ]);
    const status = new Map(
      ((tasks.tasks ?? []) as Message[]).map((t) => [t.id, String(t.status).toLowerCase()]),
    );
    const ids = new Set<string>();
    for (const c of (containers.containers ?? []) as Message[]) {
      const id = String(c.id);
      const labels = (c.labels ?? {}) as Record<string, string>;
      const copyOf = labels["dbg.copy-of"];
      const state = status.get(id) ?? "created";
      ids.add(id);
      parts.push({
        session: labels["dbg.session"],
        kind: copyOf === undefined ? "sidecar" : "copy",
        name: id,
        ref: `container:${ns}:${id}:${c.snapshotter || "overlayfs"}`,
        target: copyOf ?? labels["dbg.target"] ?? "",
        created: millis(c.created_at),
        state,
        ...(copyOf === undefined && state === "running"
          ? { attached: await held(client, ns, id) }
          : {}),
      });
    }
    const debugged = new Set(
      parts.filter((p) => p.kind === "sidecar" && p.state === "running").map((p) => p.target),
    );
    for (const t of (tasks.tasks ?? []) as Message[]) {
      const id = String(t.id);
      if (ids.has(id) || debugged.has(id) || String(t.status) !== "RUNNING") continue;
      const link = await hostNixLink(Number(t.pid), id);
      if (link) parts.push(await leftLink(`${ns}/${id}`, link));
    }
    for (const l of (leases.leases ?? []) as Message[]) {
      const id = String(l.id);
      if (!id.startsWith("dbg-") || IMAGE_LEASE.test(id) || ids.has(id)) continue;
      parts.push({
        session: `lease:${ns}:${id}`,
        kind: "rest",
        name: `lease ${ns}/${id}`,
        ref: `lease:${ns}:${id}`,
        target: "",
        created: millis(l.created_at),
        state: "unused",
      });
    }
  }
  return [...parts, ...await fifoDirs(parts)];
}

/** The FIFO dirs of the sessions in `parts`: each holds `ID-stdin` and the like. */
async function fifoDirs(parts: SessionPart[]): Promise<SessionPart[]> {
  const owner = new Map(parts.filter((p) => p.kind === "sidecar").map((p) => [p.name, p]));
  const tmp = Deno.env.get("TMPDIR") || "/tmp";
  const out: SessionPart[] = [];
  try {
    for await (const e of Deno.readDir(tmp)) {
      if (!e.isDirectory || !e.name.startsWith("dbg-fifo-")) continue;
      const path = `${tmp}/${e.name}`;
      for await (const f of Deno.readDir(path)) {
        const p = owner.get(f.name.replace(/-(stdin|stdout|stderr)$/, ""));
        if (!p) continue;
        const { session, created, state } = p;
        const ref = `fifo:${path}`;
        out.push({
          session,
          kind: "rest",
          name: `FIFO dir ${path}`,
          ref,
          target: "",
          created,
          state,
        });
        break;
      }
    }
  } catch {
    // An unreadable temp dir holds nothing dbg can remove either.
  }
  return out;
}

/** Whether a dbg holds the sidecar: its lifeline exec runs. */
async function held(client: ContainerdClient, namespace: string, id: string): Promise<boolean> {
  const req = { container_id: id, exec_id: LIFELINE_EXEC };
  const res = await client.call(TASKS, "Get", req, { namespace }).catch(() => undefined);
  return (res?.process as Message | undefined)?.status === "RUNNING";
}

/** Remove containers with their task, snapshot and lease; then leases and FIFO dirs. */
export async function removeContainerdParts(
  client: ContainerdClient,
  parts: SessionPart[],
): Promise<void> {
  const quiet = (p: Promise<unknown>) => p.catch(() => {});
  await Promise.all(parts.map(async ({ ref }) => {
    const [kind, ns, id, snapshotter] = ref.split(":");
    const opts = { namespace: ns };
    if (kind === "container") {
      await quiet(deleteTask(client, id, opts));
      await quiet(client.call(CONTAINERS, "Delete", { id }, opts));
      await quiet(client.call(SNAPSHOTS, "Remove", { snapshotter, key: id }, opts));
      await quiet(client.call(LEASES, "Delete", { id }, opts));
    }
    if (kind === "lease") await quiet(client.call(LEASES, "Delete", { id }, opts));
    if (kind === "fifo") await quiet(Deno.remove(ref.slice(5), { recursive: true }));
  }));
  await removeLinks(parts);
}

function millis(t: unknown): number {
  const seconds = (t as { seconds?: number } | undefined)?.seconds;
  return seconds ? seconds * 1000 : 0;
}
