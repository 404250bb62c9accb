/**
 * A private dockerd for tests: its own data root, exec root, socket and containerd, all under a
 * short temp dir in /tmp. It never touches the system daemon or /var/run/docker.sock.
 *
 * @module
 */

/** Path of the Docker daemon binary (Debian's docker.io). */
export const DOCKERD = "/usr/sbin/dockerd";
/** Path of the Docker client used by the tests (the Debian one, matching the daemon). */
export const DOCKER = "/usr/bin/docker";

/** Result of a finished command. */
export interface ShResult {
  /** Exit code (or 128 + signal number when killed by a signal). */
  code: number;
  /** Captured stdout, decoded as UTF-8. */
  stdout: string;
  /** Captured stderr, decoded as UTF-8. */
  stderr: string;
}

/** Options for {@link sh}. */
export interface ShOptions {
  /** Text written to the command's stdin (stdin is closed when absent). */
  stdin?: string;
  /** Throw when the exit code is not 0 (default true). */
  check?: boolean;
  /** Full environment for the command (default: the inherited one). */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
}

/** Runs a command (no shell involved) and captures its output. */
export async function sh(cmd: string[], opts: ShOptions = {}): Promise<ShResult> {
  const [program, ...args] = cmd;
  const child = new Deno.Command(program, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    clearEnv: opts.env !== undefined,
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
  const res = {
    code: out.signal ? 128 + signalNumber(out.signal) : out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
  if ((opts.check ?? true) && res.code !== 0) {
    throw new Error(`command failed (${res.code}): ${cmd.join(" ")}\n${res.stderr.trim()}`);
  }
  return res;
}

function signalNumber(sig: Deno.Signal): number {
  const table: Partial<Record<Deno.Signal, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return table[sig] ?? 0;
}

/** The inherited environment without Docker client settings and proxies. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env = Deno.env.toObject();
  for (const k of Object.keys(env)) {
    if (/^DOCKER_/i.test(k) || /_proxy$/i.test(k)) delete env[k];
  }
  return { ...env, ...extra };
}

/**
 * When a prerequisite is missing: throws in CI (`CI=true`), otherwise prints a warning and
 * returns null so the caller can skip its test.
 */
export function missingPrerequisite(what: string): null {
  const msg = `dbg tests: prerequisite missing: ${what}`;
  if (Deno.env.get("CI") === "true") throw new Error(msg);
  console.warn(`WARNING: ${msg}; skipping`);
  return null;
}

/** Returns true when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** A running private dockerd. */
export interface PrivateDockerd {
  /** Value for `-H` / DOCKER_HOST, e.g. `unix:///tmp/dbgd-abc/docker.sock`. */
  host: string;
  /** Path of the daemon's unix socket. */
  socket: string;
  /** Temp dir holding everything of this instance. */
  dir: string;
  /** The storage driver that was used (overlay2 or vfs). */
  storageDriver: string;
  /** Runs `/usr/bin/docker -H <host> …` with a private, empty DOCKER_CONFIG. */
  docker(args: string[], opts?: { stdin?: string; check?: boolean }): Promise<ShResult>;
  /** Removes all containers, stops the daemon and removes the temp dir. */
  stop(): Promise<void>;
}

/**
 * Starts a daemon with its output appended to `log`. Through sh, so that the daemon writes
 * straight to the file and does not depend on our pipes.
 */
export function spawnLogged(argv: string[], log: string): Deno.ChildProcess {
  return new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$@" >>"$DBG_LOG" 2>&1', "sh", ...argv],
    env: cleanEnv({ DBG_LOG: log }),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Prefix of the temp dirs of private dockerds (used to reap leftovers of crashed runs). */
const DIR_PREFIX = "dbgd-";

/** True while process `pid` exists (signal 0 is not offered by Deno; SIGCONT is harmless). */
export function pidAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** The PID in a pid file, or null. */
export async function readPid(path: string): Promise<number | null> {
  try {
    const n = parseInt((await Deno.readTextFile(path)).trim(), 10);
    return Number.isFinite(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** PIDs of processes (other than `skip`) whose command line mentions `dir`. */
export async function pidsMentioning(dir: string, skip: number[] = []): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid) || skip.includes(pid) || pid === Deno.pid) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      if (cmdline.split("\0").some((a) => a === dir || a.includes(dir + "/"))) pids.push(pid);
    } catch {
      // process gone
    }
  }
  return pids;
}

/** PIDs of processes in the cgroup of any container of the instance at `dir`. */
async function pidsInContainers(dir: string): Promise<number[]> {
  const ids: string[] = [];
  try {
    for await (const e of Deno.readDir(`${dir}/data/containers`)) {
      if (/^[0-9a-f]{64}$/.test(e.name)) ids.push(e.name);
    }
  } catch {
    return [];
  }
  if (ids.length === 0) return [];
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    try {
      const cgroup = await Deno.readTextFile(`/proc/${pid}/cgroup`);
      if (ids.some((id) => cgroup.includes(id))) pids.push(pid);
    } catch {
      // process gone
    }
  }
  return pids;
}

/** Lazily unmounts everything mounted at or below `dir`, deepest first. */
export async function unmountBelow(dir: string): Promise<void> {
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  const points = info.split("\n").map((l) => l.split(" ")[4]).filter(Boolean)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await sh(["umount", "-l", p], { check: false });
}

/** Sends `sig` to each of `pids`, ignoring the ones that are gone. */
export function killAll(pids: number[], sig: Deno.Signal): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/**
 * True while process `pid` exists and is not a zombie. Processes whose parent was killed are
 * reparented to PID 1, which may take seconds to reap them (e.g. a Firecracker init).
 */
export function processRunning(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Waits up to `ms` for all of `pids` to be gone; true when they are. */
export async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!pids.some(processRunning)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !pids.some(processRunning);
}

/**
 * Tears down instance dirs `/tmp/<prefix>*` left by crashed runs: those whose owner (the test
 * process named in owner.pid) is gone. `daemonPidFile` marks a dir as an instance.
 */
export async function reapStaleDirs(
  prefix: string,
  daemonPidFile: string,
  teardown: (dir: string, daemonPid: number | null) => Promise<void>,
): Promise<void> {
  for await (const e of Deno.readDir("/tmp")) {
    if (!e.isDirectory || !e.name.startsWith(prefix)) continue;
    const dir = `/tmp/${e.name}`;
    const owner = await readPid(`${dir}/owner.pid`);
    if (owner !== null && processRunning(owner)) continue;
    if (owner === null && !await exists(`${dir}/${daemonPidFile}`)) continue; // not ours or starting
    await teardown(dir, await readPid(`${dir}/${daemonPidFile}`));
  }
}

/** Stops every process of an instance dir, unmounts below it and removes it. */
async function teardownDir(dir: string, daemonPid: number | null): Promise<void> {
  if (daemonPid !== null && pidAlive(daemonPid)) {
    killAll([daemonPid], "SIGTERM");
    if (!await waitGone([daemonPid], 15_000)) killAll([daemonPid], "SIGKILL");
  }
  const rest = await pidsMentioning(dir);
  killAll(rest, "SIGKILL");
  await waitGone(rest, 5_000);
  // A daemon that died (or was killed) leaves its containers' processes running: find them by
  // their cgroup, named after the container ids.
  const inContainers = await pidsInContainers(dir);
  killAll(inContainers, "SIGKILL");
  await waitGone(inContainers, 5_000);
  await unmountBelow(dir);
  await Deno.remove(dir, { recursive: true }).catch(async () => {
    await sh(["rm", "-rf", dir], { check: false });
  });
}

/** Removes instance dirs left by crashed runs (their owner process is gone). */
function reapStale(): Promise<void> {
  return reapStaleDirs(DIR_PREFIX, "docker.pid", teardownDir);
}

async function tail(path: string, lines = 30): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Starts one dockerd with the given storage driver; throws (after cleanup) if it fails. */
async function tryStart(driver: string): Promise<PrivateDockerd> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: DIR_PREFIX });
  await Deno.writeTextFile(`${dir}/owner.pid`, `${Deno.pid}\n`);
  await Deno.mkdir(`${dir}/config`);
  const socket = `${dir}/docker.sock`;
  const host = `unix://${socket}`;
  const log = `${dir}/dockerd.log`;
  const args = [
    ...["--data-root", `${dir}/data`, "--exec-root", `${dir}/exec`],
    ...["--pidfile", `${dir}/docker.pid`, "-H", host, "--storage-driver", driver],
    ...["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false"],
    ...["--ip-masq=false", "--userland-proxy=false"],
  ];
  const child = spawnLogged([DOCKERD, ...args], log);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const env = cleanEnv({ DOCKER_CONFIG: `${dir}/config` });
  const docker = (argv: string[], opts: { stdin?: string; check?: boolean } = {}) =>
    sh([DOCKER, "-H", host, ...argv], { env, stdin: opts.stdin, check: opts.check });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      const ids = (await docker(["ps", "-aq"], { check: false })).stdout.split("\n").filter(
        Boolean,
      );
      if (ids.length > 0) await docker(["rm", "-f", ...ids], { check: false });
    }
    await teardownDir(dir, exited ? null : child.pid);
    await status;
  };

  const deadline = Date.now() + 30_000;
  while (true) {
    if (exited || Date.now() > deadline) {
      const why = exited ? `exited with ${(await status).code}` : "did not answer within 30s";
      const logTail = await tail(log);
      await stop();
      throw new Error(`private dockerd (${driver}) ${why}; log tail:\n${logTail}`);
    }
    const r = await docker(["version", "--format", "{{.Server.Version}}"], { check: false });
    if (r.code === 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return { host, socket, dir, storageDriver: driver, docker, stop };
}

/**
 * Starts a private dockerd (overlay2, falling back to vfs; `DBG_TEST_STORAGE_DRIVER` forces one)
 * and waits until it answers. Also reaps instances left by crashed runs.
 */
export async function startDockerd(): Promise<PrivateDockerd> {
  await reapStale();
  const forced = Deno.env.get("DBG_TEST_STORAGE_DRIVER");
  const drivers = forced ? [forced] : ["overlay2", "vfs"];
  const errors: string[] = [];
  for (const driver of drivers) {
    try {
      return await tryStart(driver);
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  throw new Error(`could not start a private dockerd:\n${errors.join("\n\n")}`);
}

/**
 * Starts a private dockerd, or (when not root or dockerd is missing) returns null after a
 * warning; under `CI=true` a missing prerequisite throws instead.
 */
export async function dockerdOrSkip(): Promise<PrivateDockerd | null> {
  if (!isRoot()) return missingPrerequisite("tests need root to run a private dockerd");
  if (!await exists(DOCKERD)) return missingPrerequisite(`${DOCKERD} (apt-get install docker.io)`);
  if (!await exists(DOCKER)) return missingPrerequisite(`${DOCKER} (apt-get install docker.io)`);
  return await startDockerd();
}
