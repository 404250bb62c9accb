/**
 * What dbg sessions made on an Engine API engine, for `dbg sessions` and `dbg gc`: sidecars
 * and copies (containers labelled `dbg.session`), and the images of copies (`dbg-copy:ID`,
 * labelled too). A running sidecar is held when its lifeline exec runs (lib/kill.ts).
 *
 * @module
 */

import type { SessionPart } from "../../lib/adapter.ts";
import { LIFELINE_NAME } from "../../lib/kill.ts";
import { hostNixLink, isLink, leftLink, removeLinks } from "../_host.ts";
import type { DockerClient } from "./http.ts";

interface Summary {
  Id: string;
  Names?: string[];
  Labels?: Record<string, string> | null;
  State: string;
  Created: number;
}

interface ImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  Labels?: Record<string, string> | null;
  Created: number;
}

const SESSION = "dbg.session";

/** A container's name as users give it. */
const name = (c: Summary) => (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, "");

/** The engine's dbg containers and images. */
export async function dockerParts(client: DockerClient): Promise<SessionPart[]> {
  const filter = (what: string) =>
    `/${what}/json?${what === "containers" ? "all=1&" : ""}filters=${
      encodeURIComponent(JSON.stringify({ label: [SESSION] }))
    }`;
  const [containers, images, all] = await Promise.all([
    client.request<Summary[]>("GET", filter("containers")).then((r) => r.body as Summary[]),
    client.request<ImageSummary[]>("GET", filter("images")).then((r) => r.body as ImageSummary[]),
    client.request<Summary[]>("GET", "/containers/json?all=1").then((r) => r.body as Summary[]),
  ]);
  const names = new Map(all.map((c) => [c.Id, name(c)]));
  const parts = await Promise.all(containers.map(async (c): Promise<SessionPart> => {
    const labels = c.Labels ?? {};
    const copyOf = labels["dbg.copy-of"];
    const target = copyOf ?? labels["dbg.target"] ?? "";
    const sidecar = copyOf === undefined;
    return {
      session: labels[SESSION],
      kind: sidecar ? "sidecar" : "copy",
      name: name(c),
      ref: c.Id,
      target: names.get(target) ?? target.slice(0, 12),
      created: c.Created * 1000,
      state: c.State,
      ...(sidecar && c.State === "running" ? { attached: await held(client, c.Id) } : {}),
    };
  }));
  return [
    ...parts,
    ...await nixLinks(client, all, parts),
    ...images.map((i): SessionPart => ({
      session: i.Labels?.[SESSION] ?? "",
      kind: "rest",
      name: `image ${i.RepoTags?.[0] ?? i.Id}`,
      ref: i.Id,
      target: "",
      created: i.Created * 1000,
      state: "unused",
    })),
  ];
}

/**
 * Nix links left in running targets that no running sidecar debugs (runtimes/_host.ts), found
 * where dbg runs on the engine's host.
 */
async function nixLinks(
  client: DockerClient,
  all: Summary[],
  parts: SessionPart[],
): Promise<SessionPart[]> {
  const debugged = new Set(
    parts.filter((p) => p.kind === "sidecar" && p.state === "running").map((p) => p.target),
  );
  const targets = all.filter((c) =>
    c.State === "running" && c.Labels?.[SESSION] === undefined && !debugged.has(name(c))
  );
  const found = await Promise.all(targets.map(async (c) => {
    const res = await client.request<{ State: { Pid: number } }>("GET", `/containers/${c.Id}/json`);
    const link = await hostNixLink((res.body as { State: { Pid: number } }).State.Pid, c.Id);
    return link ? [await leftLink(name(c), link)] : [];
  }));
  return found.flat();
}

/** Whether a dbg holds the sidecar: its lifeline exec runs. */
async function held(client: DockerClient, id: string): Promise<boolean> {
  const c = await client.request<{ ExecIDs?: string[] | null }>("GET", `/containers/${id}/json`);
  const execs = await Promise.all(
    ((c.body as { ExecIDs?: string[] | null }).ExecIDs ?? []).map((e) =>
      client.request<{ Running: boolean; ProcessConfig?: { arguments?: string[] } }>(
        "GET",
        `/exec/${e}/json`,
        { okStatuses: [404] },
      ).then((r) => r.status === 404 ? undefined : r.body)
    ),
  );
  return execs.some((e) =>
    typeof e === "object" && e?.Running && e.ProcessConfig?.arguments?.includes(LIFELINE_NAME)
  );
}

/** Remove dbg's containers, then its images (a copy's image is in use until its copy goes). */
export async function removeDockerParts(
  client: DockerClient,
  parts: SessionPart[],
): Promise<void> {
  const gone = { okStatuses: [404] };
  await removeLinks(parts);
  await Promise.all(
    parts.filter((p) => p.kind === "sidecar" || p.kind === "copy").map((p) =>
      client.request("DELETE", `/containers/${p.ref}`, { query: { force: 1, v: 1 }, ...gone })
    ),
  );
  for (const p of parts.filter((p) => p.kind === "rest" && !isLink(p))) {
    await client.request("DELETE", `/images/${p.ref}`, { query: { force: 1 }, ...gone });
  }
}
