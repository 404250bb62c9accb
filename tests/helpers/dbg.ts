/**
 * Runs dbg's main.ts as a subprocess, the way a user runs it, against a private engine.
 *
 * @module
 */

import { cleanEnv, type ShResult } from "./dockerd.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Options for {@link runDbg}. */
export interface DbgRun {
  /** Text for stdin (stdin is /dev/null when absent). */
  stdin?: string;
  /** Extra environment (on top of a clean one without DOCKER_*). */
  env?: Record<string, string>;
}

/** `dbg <args>` with a clean environment; never throws on a non-zero exit. */
export async function runDbg(args: string[], opts: DbgRun = {}): Promise<ShResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--cached-only", MAIN, ...args],
    env: cleanEnv({ NO_COLOR: "1", ...opts.env }),
    clearEnv: true,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin)).catch(() => {});
    await w.close().catch(() => {});
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `dbg docker -H <host> <args>`. */
export function dbgDocker(host: string, args: string[], opts: DbgRun = {}): Promise<ShResult> {
  return runDbg(["docker", "-H", host, ...args], opts);
}
