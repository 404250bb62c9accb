/**
 * Runs dbg's main.ts as a subprocess, the way a user runs it, against a private engine.
 *
 * @module
 */

import { cleanEnv, sh, type ShResult } from "./dockerd.ts";

/** main.ts, for tests that start dbg themselves. */
export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The argv that runs `dbg <args>` from this checkout, the way a user does. */
export function dbgArgv(args: string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--cached-only", MAIN, ...args];
}

/** Options for {@link runDbg}. */
export interface DbgRun {
  /** Text for stdin (stdin is /dev/null when absent). */
  stdin?: string;
  /** Extra environment (on top of a clean one without DOCKER_*). */
  env?: Record<string, string>;
}

/**
 * `dbg <args>` spawned without a terminal (stdin /dev/null, output piped) and with a clean
 * environment, for tests that signal it while it runs.
 */
export function spawnDbg(args: string[]): Deno.ChildProcess {
  const [cmd, ...rest] = dbgArgv(args);
  return new Deno.Command(cmd, {
    args: rest,
    env: cleanEnv({ NO_COLOR: "1" }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** `dbg <args>` with a clean environment; never throws on a non-zero exit. */
export function runDbg(args: string[], opts: DbgRun = {}): Promise<ShResult> {
  return sh(dbgArgv(args), {
    stdin: opts.stdin,
    env: cleanEnv({ NO_COLOR: "1", ...opts.env }),
    check: false,
  });
}

/** `dbg docker -H <host> <args>`. */
export function dbgDocker(host: string, args: string[], opts: DbgRun = {}): Promise<ShResult> {
  return runDbg(["docker", "-H", host, ...args], opts);
}

/**
 * `dbg <args>` as an unprivileged user (uid 65534), for the permission-denied paths. Deno's
 * cache under /root is not readable there, so a world-readable copy of it is made first.
 */
export async function runDbgAsNobody(args: string[]): Promise<ShResult> {
  const denoDir = await Deno.makeTempDir({ prefix: "dbg-denodir-" });
  try {
    await sh([Deno.execPath(), "cache", MAIN], { env: cleanEnv({ DENO_DIR: denoDir }) });
    await sh(["chmod", "-R", "a+rwX", denoDir]);
    const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
    return await sh([...nobody, ...dbgArgv(args)], {
      env: { DENO_DIR: denoDir, HOME: "/tmp", NO_COLOR: "1" },
      check: false,
    });
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
}
