/**
 * Which parts of dbg's sessions are garbage (`dbg gc`), and how `dbg sessions` shows them.
 * Runtime-neutral: the adapters list the parts (`sessionParts`) and remove them.
 *
 * A session is live while its sidecar (or pod) runs and a dbg holds it (or the runtime cannot tell), and
 * while anything of it is younger than `SETUP_GRACE_MS` and has not ended: a dbg that is still
 * creating it. Every part of a session that is not live is garbage, and nothing else.
 *
 * @module
 */

import type { SessionPart } from "./adapter.ts";
import { printable } from "./printable.ts";

/** How long a session's parts may exist before its dbg holds it. */
export const SETUP_GRACE_MS = 60_000;

/** The parts of sessions that are not live. */
export function garbage(parts: SessionPart[], now: number): SessionPart[] {
  const live = new Set(
    parts.filter((p) =>
      (held(p) && p.state === "running" && p.attached !== false) ||
      (now - p.created < SETUP_GRACE_MS && !ENDED.has(p.state))
    ).map((p) => p.session),
  );
  return parts.filter((p) => !live.has(p.session));
}

const ENDED = new Set(["exited", "dead", "stopped", "succeeded", "failed", "ended"]);

/** What a dbg holds while its session runs. */
const held = (p: SessionPart) => p.kind === "sidecar" || p.kind === "pod";

/** A part with the runtime that holds it. */
export type Placed = SessionPart & { runtime: string };

/** `dbg sessions`: the sidecars and copies, newest first. */
export function sessionsTable(parts: Placed[], now: number): string {
  const shown = parts.filter((p) => p.kind !== "rest").sort((a, b) => b.created - a.created);
  if (!shown.length) return "No dbg sessions.";
  const rows = [["RUNTIME", "NAME", "KIND", "TARGET", "AGE", "STATE", "ATTACHED"]];
  for (const p of shown) {
    const attached = !held(p) || p.state !== "running"
      ? "-"
      : p.attached === undefined
      ? "?"
      : p.attached
      ? "yes"
      : "no";
    const cells = [p.runtime, p.name, p.kind, p.target, age(now - p.created), p.state, attached];
    rows.push(cells.map((c) => printable(c)));
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** `dbg gc`'s line for one part it removed (or would). */
export function gcLine(p: Placed, dryRun: boolean, now: number): string {
  const what = p.kind === "rest" ? p.name : `${p.kind} ${p.name}`;
  const of = p.target ? ` of ${p.target}` : "";
  return printable(
    `${dryRun ? "would remove" : "removed"} ${p.runtime} ${what}${of} (${p.state}, ${
      age(now - p.created)
    } old)`,
  );
}

/** A duration as `docker ps` shows one, shortly: 45s, 12m, 3h, 2d. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
