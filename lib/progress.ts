/**
 * Pull progress: a one-line bar on a TTY (stderr), nothing otherwise.
 *
 * @module
 */

import type { PullProgress } from "./adapter.ts";

/** A progress reporter for `ensureImage`, or undefined when stderr is not a terminal or -q. */
export function pullProgress(image: string, enabled: boolean): PullProgress | undefined {
  if (!enabled) return undefined;
  const layers = new Map<string, { current: number; total: number }>();
  const enc = new TextEncoder();
  let last = 0;
  return (ev) => {
    if (ev.id && ev.total) layers.set(ev.id, { current: ev.current ?? 0, total: ev.total });
    const now = Date.now();
    if (now - last < 100 && ev.status !== "done") return;
    last = now;
    let cur = 0, tot = 0;
    for (const l of layers.values()) (cur += l.current), (tot += l.total);
    const pct = tot ? Math.min(100, Math.floor((cur / tot) * 100)) : 0;
    const width = 24;
    const bar = "#".repeat(Math.round((pct / 100) * width)).padEnd(width, ".");
    const line = ev.status === "done"
      ? `Pulled ${image}\n`
      : `Pulling ${image} [${bar}] ${pct}% ${mb(cur)}/${mb(tot)}`;
    Deno.stderr.writeSync(enc.encode(`\r\x1b[K${line}`));
  };
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)}MB`;
}
