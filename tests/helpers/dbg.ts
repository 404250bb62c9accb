/**
 * Runs dbg as a subprocess, the way a user runs it, against a private engine: its bundle, which
 * the binary is compiled from (scripts/compile.ts), so that the tests run what ships.
 *
 * @module
 */

import { cleanEnv, sh, type ShResult } from "./dockerd.ts";
import { bundle, bundledRuntimes, CONFIG, V8_FLAGS } from "../../scripts/compile.ts";

/**
 * The bundle, made anew for each test module from this checkout's code, in a dir that every
 * user can read (dbgAs), removed when the module ends.
 */
const BUNDLE = await Deno.makeTempDir({ prefix: "dbg-bundle-" });
globalThis.addEventListener("unload", () => Deno.removeSync(BUNDLE, { recursive: true }));
await Deno.chmod(BUNDLE, 0o755);
/** The bundle's main.js, for tests that start dbg themselves. */
export const MAIN = await bundle(BUNDLE);
/** How Deno runs the bundle: its npm imports map to packages through deno.json. */
const RUN = ["run", "--allow-all", "--cached-only", `--config=${CONFIG}`, V8_FLAGS];

/** The argv that runs `dbg <args>` from this checkout, the way a user does. */
export function dbgArgv(args: string[]): string[] {
  return [Deno.execPath(), ...RUN, MAIN, ...args];
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
 * A Deno and a DENO_DIR that every user can run dbg with: root's (under /root, mode 0700) are
 * copied once per test process into a world-readable dir, removed when the process ends.
 */
let shared: Promise<{ deno: string; denoDir: string }> | undefined;
function sharedDeno(): Promise<{ deno: string; denoDir: string }> {
  shared ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "dbg-deno-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const deno = `${dir}/deno`, denoDir = `${dir}/cache`;
    await Deno.copyFile(Deno.execPath(), deno);
    // The runtimes are imported by computed specifiers (runtimes/mod.ts): each is cached too.
    await sh([deno, "cache", `--config=${CONFIG}`, MAIN, ...bundledRuntimes(BUNDLE)], {
      env: cleanEnv({ DENO_DIR: denoDir }),
    });
    await sh(["chmod", "-R", "a+rwX", dir]);
    return { deno, denoDir };
  })();
  return shared;
}

/** Who runs dbg: an unprivileged uid (no groups) or a user with its groups. */
export type RunAs = { uid: number } | { user: string };

/**
 * dbg as another user, with `env` on top of a bare environment: `run` waits for it, `spawn`
 * starts it without a terminal (for tests that signal it).
 */
export async function dbgAs(who: RunAs, env: Record<string, string> = {}): Promise<{
  run(args: string[], opts?: DbgRun): Promise<ShResult>;
  spawn(args: string[]): Deno.ChildProcess;
  /** The whole argv, `env -i …` first, for a shell to run (in tmux). */
  argv(args: string[]): string[];
}> {
  const { deno, denoDir } = await sharedDeno();
  // setpriv execs dbg itself, so signals sent to the child reach dbg (runuser would keep SIGINT).
  const as = "uid" in who
    ? ["setpriv", `--reuid=${who.uid}`, `--regid=${who.uid}`, "--clear-groups"]
    : ["setpriv", `--reuid=${who.user}`, `--regid=${who.user}`, "--init-groups"];
  const base = { DENO_DIR: denoDir, HOME: "/tmp", NO_COLOR: "1", PATH: "/usr/bin:/bin", ...env };
  const argv = (
    args: string[],
  ) => [...as, deno, ...RUN, MAIN, ...args];
  return {
    run: (args, opts = {}) =>
      sh(argv(args), { env: { ...base, ...opts.env }, stdin: opts.stdin, check: false, cwd: "/" }),
    spawn: (args) => {
      const [cmd, ...rest] = argv(args);
      return new Deno.Command(cmd, {
        args: rest,
        env: base,
        clearEnv: true,
        cwd: "/",
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    },
    argv: (
      args,
    ) => ["env", "-i", ...Object.entries(base).map(([k, v]) => `${k}=${v}`), ...argv(args)],
  };
}

/** `dbg <args>` as uid 65534, for the permission-denied paths. */
export async function runDbgAsNobody(args: string[]): Promise<ShResult> {
  return await (await dbgAs({ uid: 65534 })).run(args);
}
