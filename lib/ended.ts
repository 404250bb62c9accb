/**
 * How a target that is not running ended, in words for the banner of a copy session:
 * "exited with code 1 5 minutes ago (OOMKilled)". Every runtime reports the same three things.
 *
 * @module
 */

import { printable } from "./printable.ts";

/** What a runtime knows of a container's end. */
export interface Ending {
  /** Exit code; undefined when the runtime does not know it. */
  code?: number;
  /** When it ended (RFC 3339); a zero or missing time is left out. */
  at?: string;
  /** The runtime's word for why (OOMKilled, Error, a message), if any. */
  reason?: string;
}

/** "exited with code 1 5 minutes ago (OOMKilled)". */
export function endedText(e: Ending, now: number = Date.now()): string {
  const code = e.code === undefined ? "exited" : `exited with code ${e.code}`;
  const when = e.at ? ago(Date.parse(e.at), now) : "";
  const reason = e.reason ? printable(e.reason).slice(0, 80) : "";
  return [code, when, reason && `(${reason})`].filter(Boolean).join(" ");
}

/** "5 minutes ago", or "" for an unknown or zero time (Go's 0001-01-01). */
function ago(at: number, now: number): string {
  if (!Number.isFinite(at) || at <= 0) return "";
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s === 0) return "just now";
  const [n, unit] = s < 90
    ? [s, "second"]
    : s < 90 * 60
    ? [Math.round(s / 60), "minute"]
    : s < 36 * 3600
    ? [Math.round(s / 3600), "hour"]
    : [Math.round(s / 86400), "day"];
  return `${n} ${unit}${n === 1 ? "" : "s"} ago`;
}
