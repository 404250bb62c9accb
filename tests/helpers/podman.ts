/**
 * A private Podman service for tests, rootful or rootless: its own storage, run dir, socket and
 * containers.conf (through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF), all under a temp dir
 * in /tmp. It never reads or changes the system's Podman files. Rootless runs as a real
 * unprivileged user with subordinate ids, {@link ROOTLESS_USER}, made once if missing.
 *
 * @module
 */

import {
  cleanEnv,
  exists,
  killAll,
  missingPrerequisite,
  pidAlive,
  pidsMentioning,
  readPid,
  reapStaleDirs,
  sh,
  type ShResult,
  spawnLogged,
  unmountBelow,
  waitGone,
} from "./dockerd.ts";

export const PODMAN = "/usr/bin/podman";
/** The unprivileged user of the rootless tests (its subuid range comes from useradd). */
export const ROOTLESS_USER = "dbgpod";
const DIR_PREFIX = "dbgp-";

/** A running private Podman service. */
export interface PrivatePodman {
  /** `-H` value for dbg. */
  host: string;
  socket: string;
  dir: string;
  /** The user the service runs as, when rootless. */
  user?: string;
  /** The environment that binds podman (and dbg) to this instance. */
  env: Record<string, string>;
  /** `podman <args>` against this instance (as its user). The name fits the image builders. */
  docker(args: string[], opts?: { stdin?: string; check?: boolean }): Promise<ShResult>;
  /** Runs argv as the instance's user with its environment (root when rootful). */
  run(argv: string[], opts?: { stdin?: string; env?: Record<string, string> }): Promise<ShResult>;
  stop(): Promise<void>;
  podman: true;
  stage(path: string): Promise<string>;
}

/**
 * The ulimits of containers: Podman's defaults (nofile 1048576) exceed this sandbox's hard
 * limits, which the runtime cannot raise, so they are the limits this process has. conmon runs
 * with at most 32768 processes, so nproc is no more than that.
 */
async function ulimits(): Promise<string> {
  const limits = await Deno.readTextFile("/proc/self/limits");
  const hard = (name: string) => {
    const v = new RegExp(`^${name}\\s+\\S+\\s+(\\S+)`, "m").exec(limits)?.[1] ?? "unlimited";
    return v === "unlimited" ? Infinity : Number(v);
  };
  const nofile = Math.min(hard("Max open files"), 1048576);
  const nproc = Math.min(hard("Max processes"), 32768);
  return `"nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"`;
}

function confEnv(dir: string): Record<string, string> {
  return {
    CONTAINERS_CONF: `${dir}/containers.conf`,
    CONTAINERS_STORAGE_CONF: `${dir}/storage.conf`,
    CONTAINERS_REGISTRIES_CONF: `${dir}/registries.conf`,
    XDG_RUNTIME_DIR: `${dir}/xdg`,
  };
}

/** argv run as `user` (through runuser, with the user's groups), or as is for root. */
function asUser(user: string | undefined, argv: string[]): string[] {
  return user ? ["/usr/sbin/runuser", "-u", user, "--", ...argv] : argv;
}

async function ensureUser(): Promise<string | null> {
  if ((await sh(["id", "-u", ROOTLESS_USER], { check: false })).code !== 0) {
    const r = await sh(["useradd", "-m", "-s", "/bin/sh", ROOTLESS_USER], { check: false });
    if (r.code !== 0) return `cannot make user ${ROOTLESS_USER}: ${r.stderr.trim()}`;
  }
  const subuid = await Deno.readTextFile("/etc/subuid").catch(() => "");
  if (!subuid.split("\n").some((l) => l.startsWith(`${ROOTLESS_USER}:`))) {
    return `${ROOTLESS_USER} has no range in /etc/subuid (usermod --add-subuids)`;
  }
  return null;
}

async function teardown(dir: string, servicePid: number | null): Promise<void> {
  const user = (await Deno.readTextFile(`${dir}/user`).catch(() => "")).trim() || undefined;
  const env = cleanEnv({ ...confEnv(dir), HOME: user ? `/home/${user}` : "/root" });
  await sh(asUser(user, [PODMAN, "rm", "-af", "-t", "0"]), { env, check: false, cwd: "/" });
  if (servicePid !== null && pidAlive(servicePid)) {
    killAll([servicePid], "SIGTERM");
    if (!await waitGone([servicePid], 10_000)) killAll([servicePid], "SIGKILL");
  }
  // Rootless Podman keeps its user namespace in a pause process, and the user is the tests'.
  if (user) await sh(["pkill", "-KILL", "-u", user], { check: false });
  const pause = await readPid(`${dir}/xdg/libpod/tmp/pause.pid`);
  const rest = [...await pidsMentioning(dir), ...pause ? [pause] : []];
  killAll(rest, "SIGKILL");
  await waitGone(rest, 5_000);
  await unmountBelow(dir);
  await sh(["rm", "-rf", dir], { check: false });
}

async function start(rootless: boolean): Promise<PrivatePodman> {
  await reapStaleDirs(DIR_PREFIX, "service.pid", teardown);
  const user = rootless ? ROOTLESS_USER : undefined;
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: DIR_PREFIX });
  await Deno.writeTextFile(`${dir}/owner.pid`, `${Deno.pid}\n`);
  await Deno.writeTextFile(`${dir}/user`, user ?? "");
  await Deno.mkdir(`${dir}/xdg/podman`, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(
    `${dir}/containers.conf`,
    `[containers]\ndefault_ulimits = [${await ulimits()}]\n` +
      `[engine]\nevents_logger = "file"\nevents_logfile_path = "${dir}/events.log"\n` +
      `cgroup_manager = "cgroupfs"\nruntime = "runc"\ntmp_dir = "${dir}/xdg/libpod/tmp"\n` +
      `volume_path = "${dir}/volumes"\n`,
  );
  await Deno.writeTextFile(
    `${dir}/storage.conf`,
    // (Rootless Podman reads rootless_storage_path, not graphroot.)
    `[storage]\ndriver = "overlay"\nrunroot = "${dir}/run"\ngraphroot = "${dir}/root"\n` +
      `rootless_storage_path = "${dir}/root"\n`,
  );
  await Deno.writeTextFile(`${dir}/registries.conf`, `unqualified-search-registries = []\n`);
  await sh(["chmod", "755", dir]);
  if (user) await sh(["chown", "-R", user, dir]);
  // Where Podman's own rootless socket is, so that dbg finds it by itself through XDG_RUNTIME_DIR.
  const socket = `${dir}/xdg/podman/podman.sock`;
  const home = user ? `/home/${user}` : "/root";
  const env = cleanEnv({ ...confEnv(dir), HOME: home });
  const child = spawnLogged(
    [
      "env",
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...asUser(user, [PODMAN, "system", "service", "--time=0", `unix://${socket}`]),
    ],
    `${dir}/service.log`,
  );
  await Deno.writeTextFile(`${dir}/service.pid`, `${child.pid}\n`);
  const run = (argv: string[], o: { stdin?: string; env?: Record<string, string> } = {}) =>
    sh(asUser(user, argv), { env: { ...env, ...o.env }, stdin: o.stdin, check: false, cwd: "/" });
  const docker = async (args: string[], o: { stdin?: string; check?: boolean } = {}) => {
    const r = await run([PODMAN, ...args], o);
    if ((o.check ?? true) && r.code !== 0) {
      throw new Error(`podman ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
    }
    return r;
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await teardown(dir, child.pid);
    await child.status;
  };
  const deadline = Date.now() + 30_000;
  while (!await exists(socket)) {
    if (Date.now() > deadline) {
      const log = await Deno.readTextFile(`${dir}/service.log`).catch(() => "");
      await stop();
      throw new Error(`private podman service did not start:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stage = async (path: string) => {
    if (!user) return path;
    const copy = `${dir}/${path.split("/").pop()}`;
    await Deno.copyFile(path, copy);
    await sh(["chown", user, copy]);
    return copy;
  };
  return {
    host: `unix://${socket}`,
    socket,
    dir,
    user,
    env,
    docker,
    run,
    stop,
    podman: true,
    stage,
  };
}

/** Starts a private Podman service, or skips (throws under CI=true) when it cannot. */
export async function podmanOrSkip(
  opts: { rootless: boolean },
): Promise<PrivatePodman | null> {
  if (Deno.uid() !== 0) return missingPrerequisite("tests need root to run a private podman");
  if (!await exists(PODMAN)) return missingPrerequisite(`${PODMAN} (apt-get install podman)`);
  if (opts.rootless) {
    for (const bin of ["/usr/bin/newuidmap", "/usr/sbin/runuser"]) {
      if (!await exists(bin)) {
        return missingPrerequisite(`${bin} (apt-get install uidmap util-linux)`);
      }
    }
    const why = await ensureUser();
    if (why) return missingPrerequisite(why);
  }
  return await start(opts.rootless);
}
