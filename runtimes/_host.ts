/**
 * What the engine's host says about a target's main process, for adapters that run on that
 * host (Docker on a local socket, containerd always): its live user and its user namespace.
 * Images that start as root and drop privileges (gosu, su-exec) say root in their config; the
 * process's /proc/<pid>/status tells the truth. And the nix links that sessions left in targets.
 *
 * @module
 */

import type { SessionPart } from "../lib/adapter.ts";

/** The live user of a host process, as the target sees it, and its user namespace mapping. */
export interface HostProcessUser {
  /** `UID:GID` inside the target's user namespace. */
  user: string;
  /** The first line of the target's uid_map when it is not the identity ("0 100000 65536"). */
  userNamespace?: string;
}

const IDENTITY = "0 0 4294967295";

/**
 * The user of host process `pid`, when it belongs to container `id`. The PID is trusted only
 * when its cgroup names the container: dbg may run in another PID namespace than the engine,
 * where the same number is another process. Undefined when /proc cannot tell.
 */
export function hostProcessUser(pid: number, id: string): HostProcessUser | undefined {
  if (!pid) return undefined;
  try {
    // Read synchronously: each read of a small /proc file then takes microseconds, where an
    // async one is a round trip through Deno's thread pool (~1.5 ms for the four, on the way to
    // the sidecar's create).
    const [cgroup, status, uidMap, gidMap] = ["cgroup", "status", "uid_map", "gid_map"].map((f) =>
      Deno.readTextFileSync(`/proc/${pid}/${f}`)
    );
    if (!cgroup.includes(id)) return undefined;
    // Ptrace access (and so /proc/<pid>/root) needs every one of the real, effective and saved
    // ids to match: prefer one that is not root. They are host ids; map them into the target's.
    const pick = (field: string, map: string) => {
      const ids = (new RegExp(`^${field}:\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`, "m").exec(status)
        ?.slice(1) ?? []).map((u) => inside(Number(u), map));
      return ids.length ? ids.find((u) => u !== 0) ?? ids[0] : undefined;
    };
    const uid = pick("Uid", uidMap), gid = pick("Gid", gidMap);
    if (uid === undefined || gid === undefined) return undefined;
    const first = uidMap.trim().split("\n")[0].trim().split(/\s+/).join(" ");
    return { user: `${uid}:${gid}`, ...(first === IDENTITY ? {} : { userNamespace: first }) };
  } catch {
    return undefined;
  }
}

/** A host id as the user namespace of `map` (an uid_map or gid_map) sees it. */
function inside(id: number, map: string): number {
  for (const line of map.trim().split("\n")) {
    const [first, host, count] = line.trim().split(/\s+/).map(Number);
    if (id >= host && id < host + count) return first + id - host;
  }
  return id;
}

/**
 * The temporary `/nix` link of a nix session (lib/entry.sh: `/nix` → `/proc/N/root/nix`) in the
 * root of host process `pid` of container `id`, as a path dbg can remove: left behind when a
 * session's entry shell was killed before its trap ran. Undefined when there is none, or /proc
 * cannot tell (dbg runs elsewhere than the engine). The target's own /nix is never such a link.
 */
export async function hostNixLink(pid: number, id: string): Promise<string | undefined> {
  if (!pid) return undefined;
  try {
    if (!(await Deno.readTextFile(`/proc/${pid}/cgroup`)).includes(id)) return undefined;
    const path = `/proc/${pid}/root/nix`;
    return /^\/proc\/\d+\/root\/nix$/.test(await Deno.readLink(path)) ? path : undefined;
  } catch {
    return undefined;
  }
}

/** A nix link that no session uses, as `dbg gc` removes it (its age is the link's). */
export async function leftLink(target: string, path: string): Promise<SessionPart> {
  const made = await Deno.lstat(path).then((s) => s.mtime?.getTime() ?? 0, () => 0);
  const ref = `nix:${path}`;
  return {
    session: ref,
    kind: "rest",
    name: `nix link in ${target}`,
    ref,
    target: "",
    created: made,
    state: "unused",
  };
}

/** Whether a part is such a link. */
export const isLink = (p: SessionPart): boolean => p.ref.startsWith("nix:");

/** Remove the nix links among `parts`. */
export async function removeLinks(parts: SessionPart[]): Promise<void> {
  await Promise.all(
    parts.filter(isLink).map((p) => Deno.remove(p.ref.slice("nix:".length)).catch(() => {})),
  );
}
