/**
 * A private containerd for tests (Debian's 1.6 from docker.io): its own root, state, socket,
 * runc root, FIFO dir and cgroup parent, all under a short temp dir in /tmp. It never touches a
 * system containerd or /run/containerd/containerd.sock. The one thing it cannot keep private is
 * the shim sockets: containerd 1.6 hard-codes `/run/containerd/s/<sha256>`; stop() removes the
 * ones of shims it had to kill.
 *
 * @module
 */

import {
  cleanEnv,
  exists,
  killAll,
  missingPrerequisite,
  pidsMentioning,
  processRunning,
  reapStaleDirs,
  sh,
  type ShResult,
  spawnLogged,
  startDockerd,
  unmountBelow,
  waitGone,
} from "./dockerd.ts";
import {
  BUSYBOX_IMAGE,
  imageCacheTarball,
  loadTestImages,
  NIXERY_IMAGE,
  TARGET_IMAGE,
  TEST_IMAGES,
} from "./images.ts";

/** Path of the containerd daemon (Debian's containerd package, pulled in by docker.io). */
export const CONTAINERD = "/usr/bin/containerd";
/** Path of containerd's CLI. */
export const CTR = "/usr/bin/ctr";
/** Path of the runc v2 shim that containerd starts per container. */
export const SHIM = "/usr/bin/containerd-shim-runc-v2";
/** Path of runc. */
export const RUNC = "/usr/sbin/runc";

/** Where containerd 1.6 puts shim sockets whatever its `state` is (`/run/containerd/s/<hash>`). */
const SHIM_SOCKET_DIR = "/run/containerd/s";

/** Options of {@link PrivateContainerd.ctr}. */
export interface CtrOptions {
  /** containerd namespace (`-n`), default `default`. */
  namespace?: string;
  /** Text written to ctr's stdin (stdin is closed when absent). */
  stdin?: string;
  /** Throw when the exit code is not 0 (default true). */
  check?: boolean;
}

/** A running private containerd. */
export interface PrivateContainerd {
  /** Path of the daemon's gRPC unix socket (no `unix://` prefix). */
  address: string;
  /** Temp dir holding everything of this instance. */
  dir: string;
  /** Snapshotter the helpers use for images and containers (`overlayfs`, or `native`). */
  snapshotter: string;
  /**
   * Runs `/usr/bin/ctr --address <sock> -n <namespace> …` (CONTAINERD_* variables removed,
   * CONTAINERD_SNAPSHOTTER set to {@link snapshotter}). To keep runs private, `run` gets
   * `--fifo-dir`, `--runc-root` and `--cgroup` inside this instance unless given, and
   * `tasks exec|start` get `--fifo-dir`.
   */
  ctr(args: string[], opts?: CtrOptions): Promise<ShResult>;
  /**
   * The argv and environment {@link ctr} would run for `args` (same private flags), for callers
   * that spawn ctr themselves, e.g. to time it. Each `run` gets a fresh cgroup, as with ctr().
   */
  ctrCommand(
    args: string[],
    opts?: Pick<CtrOptions, "namespace">,
  ): { argv: string[]; env: Record<string, string> };
  /**
   * Kills and deletes every task and container in every namespace, stops the daemon (SIGTERM,
   * SIGKILL after 10 s), kills leftover shims and container processes of this instance,
   * unmounts below the dir and removes it.
   */
  stop(): Promise<void>;
}

/** Prefix of the temp dirs of private containerds (used to reap leftovers of crashed runs). */
const DIR_PREFIX = "dbgc-";

/**
 * The name containerd gives a docker-style reference, as `ctr images import` of a `docker save`
 * tarball produces it: `busybox:musl` → `docker.io/library/busybox:musl`,
 * `dbg-test/target` → `docker.io/dbg-test/target:latest`, `nixery.dev/x/y:t` unchanged.
 */
export function imageName(ref: string): string {
  let name = ref;
  const slash = name.indexOf("/");
  const first = slash < 0 ? "" : name.slice(0, slash);
  const hasDomain = first.includes(".") || first.includes(":") || first === "localhost";
  if (!hasDomain) name = `docker.io/${name}`;
  if (name.startsWith("docker.io/") && !name.slice("docker.io/".length).includes("/")) {
    name = `docker.io/library/${name.slice("docker.io/".length)}`;
  }
  const lastPart = name.slice(name.lastIndexOf("/") + 1);
  if (!lastPart.includes(":") && !name.includes("@")) name += ":latest";
  return name;
}

/** {@link BUSYBOX_IMAGE} as containerd names it: `docker.io/library/busybox:musl`. */
export const CTR_BUSYBOX_IMAGE = imageName(BUSYBOX_IMAGE);
/** {@link TARGET_IMAGE} as containerd names it: `docker.io/dbg-test/target:latest`. */
export const CTR_TARGET_IMAGE = imageName(TARGET_IMAGE);
/** {@link NIXERY_IMAGE} as containerd names it: `nixery.dev/shell/busybox:latest`. */
export const CTR_NIXERY_IMAGE = imageName(NIXERY_IMAGE);
/** All test images, as containerd names them. */
export const CTR_TEST_IMAGES = TEST_IMAGES.map(imageName);

function isRoot(): boolean {
  return Deno.uid() === 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tail(path: string, lines = 30): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function sha256Hex(data: Uint8Array<ArrayBuffer> | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Cgroup parent of the containers this helper starts: `/<basename of the instance dir>`. */
function cgroupParent(dir: string): string {
  return `/${basename(dir)}`;
}

/** Environment for ctr: no CONTAINERD_* settings or proxies from the caller. */
function ctrEnv(snapshotter: string): Record<string, string> {
  const env = cleanEnv();
  for (const k of Object.keys(env)) if (/^CONTAINERD_/i.test(k)) delete env[k];
  return { ...env, CONTAINERD_SNAPSHOTTER: snapshotter };
}

/** Adds the instance's private paths to `ctr run` and `ctr tasks exec|start` (see ctr()). */
function privateArgs(args: string[], dir: string, ns: string, seq: () => number): string[] {
  const has = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  const extra: string[] = [];
  let at = 0;
  if (args[0] === "run") {
    at = 1;
    if (!has("--runc-root")) extra.push("--runc-root", `${dir}/runc`);
    if (!has("--cgroup")) extra.push("--cgroup", `${cgroupParent(dir)}/${ns}/run-${seq()}`);
  } else if (["t", "task", "tasks"].includes(args[0]) && ["exec", "start"].includes(args[1])) {
    at = 2;
  }
  if (at > 0 && !has("--fifo-dir")) extra.push("--fifo-dir", `${dir}/fifo`);
  return extra.length === 0 ? args : [...args.slice(0, at), ...extra, ...args.slice(at)];
}

/** A shim of an instance, from its command line (`-namespace ns -id id -address sock`). */
interface ShimInfo {
  pid: number;
  namespace: string;
  id: string;
  address: string;
}

async function shimsOf(dir: string): Promise<ShimInfo[]> {
  const shims: ShimInfo[] = [];
  for (const pid of await pidsMentioning(dir)) {
    try {
      const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
      if (!basename(argv[0]).startsWith("containerd-shim")) continue;
      const opt = (name: string) => {
        const i = argv.indexOf(name);
        return i >= 0 ? argv[i + 1] ?? "" : "";
      };
      shims.push({ pid, namespace: opt("-namespace"), id: opt("-id"), address: opt("-address") });
    } catch {
      // process gone
    }
  }
  return shims;
}

/**
 * Cgroup paths of the instance's containers: the cgroup parent of this helper plus the
 * `linux.cgroupsPath` of every bundle in the state dir (containers other code created there).
 */
async function containerCgroups(dir: string): Promise<string[]> {
  const paths = new Set([cgroupParent(dir)]);
  const tasks = `${dir}/state/io.containerd.runtime.v2.task`;
  try {
    for await (const ns of Deno.readDir(tasks)) {
      for await (const c of Deno.readDir(`${tasks}/${ns.name}`)) {
        try {
          const spec = JSON.parse(
            await Deno.readTextFile(`${tasks}/${ns.name}/${c.name}/config.json`),
          );
          const p = spec?.linux?.cgroupsPath;
          // Only `/<parent>/<name>` or deeper: never kill a whole shared top-level cgroup.
          if (typeof p === "string" && /^(\/[^/]+){2,}$/.test(p)) paths.add(p);
        } catch {
          // no spec (yet)
        }
      }
    }
  } catch {
    // no state dir
  }
  return [...paths];
}

/** PIDs of processes in any of the cgroup `paths` (or below them), in any hierarchy. */
export async function pidsInCgroups(paths: string[]): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    try {
      const lines = (await Deno.readTextFile(`/proc/${pid}/cgroup`)).split("\n");
      const inside = lines.some((l) => {
        const p = l.split(":").slice(2).join(":");
        return paths.some((c) => p === c || p.startsWith(c + "/"));
      });
      if (inside) pids.push(pid);
    } catch {
      // process gone
    }
  }
  return pids;
}

/** Removes the (empty) cgroup dirs at and below each of `paths`, in every hierarchy. */
export async function removeCgroups(paths: string[]): Promise<void> {
  const roots = ["/sys/fs/cgroup"];
  try {
    for await (const e of Deno.readDir("/sys/fs/cgroup")) {
      if (e.isDirectory) roots.push(`/sys/fs/cgroup/${e.name}`);
    }
  } catch {
    return;
  }
  for (const root of roots) {
    for (const p of paths) {
      const top = `${root}${p}`;
      if (!await exists(`${top}/cgroup.procs`)) continue;
      const dirs: string[] = [];
      const walk = async (d: string) => {
        dirs.push(d);
        for await (const e of Deno.readDir(d)) if (e.isDirectory) await walk(`${d}/${e.name}`);
      };
      await walk(top).catch(() => {});
      dirs.sort((a, b) => b.length - a.length);
      for (const d of dirs) await Deno.remove(d).catch(() => {});
    }
  }
}

/** Stops every process of an instance dir, cleans its cgroups and shim sockets, removes it. */
async function teardownDir(dir: string, daemonPid: number | null): Promise<void> {
  const shims = await shimsOf(dir);
  const cgroups = await containerCgroups(dir);
  if (daemonPid !== null && processRunning(daemonPid)) {
    killAll([daemonPid], "SIGTERM");
    if (!await waitGone([daemonPid], 10_000)) killAll([daemonPid], "SIGKILL");
    await waitGone([daemonPid], 5_000);
  }
  const rest = await pidsMentioning(dir);
  killAll(rest, "SIGKILL");
  await waitGone(rest, 5_000);
  // Killed shims leave their containers' processes running: find them by their cgroup.
  const inContainers = await pidsInCgroups(cgroups);
  killAll(inContainers, "SIGKILL");
  await waitGone(inContainers, 5_000);
  for (const s of shims) {
    // containerd 1.6: sha256(filepath.Join(<containerd address>, <namespace>, <id>)).
    const hash = await sha256Hex(`${s.address}/${s.namespace}/${s.id}`.replace(/\/+/g, "/"));
    await Deno.remove(`${SHIM_SOCKET_DIR}/${hash}`).catch(() => {});
  }
  await unmountBelow(dir);
  await removeCgroups(cgroups);
  await Deno.remove(dir, { recursive: true }).catch(async () => {
    await sh(["rm", "-rf", dir], { check: false });
  });
}

/** Removes instance dirs left by crashed runs (their owner process is gone). */
function reapStale(): Promise<void> {
  return reapStaleDirs(DIR_PREFIX, "containerd.pid", teardownDir);
}

/** Options of {@link startContainerd}. */
export interface ContainerdOptions {
  /**
   * Enables the CRI plugin (off by default: slow to start), for a kubelet: stream server on
   * 127.0.0.1 (random port), CNI dirs `cni/bin` and `cni/conf` (empty: the caller may add a
   * plugin), network namespaces and runc root in the instance dir, the helper's snapshotter,
   * cgroupfs. `sandboxImage` is the pod sandbox (pause) image, which the caller imports into
   * namespace `k8s.io`.
   */
  cri?: { sandboxImage: string };
  /** Snapshotter (default: `DBG_TEST_SNAPSHOTTER`, else overlayfs falling back to native). */
  snapshotter?: string;
}

/** The CRI plugin's section of the config (see {@link ContainerdOptions.cri}). */
function criToml(dir: string, snapshotter: string, sandboxImage: string): string[] {
  const q = JSON.stringify;
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  return [
    `${cri}]`,
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    `  sandbox_image = ${q(sandboxImage)}`,
    "  enable_selinux = false",
    "  disable_apparmor = true",
    "  restrict_oom_score_adj = true",
    "  netns_mounts_under_state_dir = true", // else /var/run/netns
    `  ${cri}.cni]`,
    `    bin_dir = ${q(`${dir}/cni/bin`)}`,
    `    conf_dir = ${q(`${dir}/cni/conf`)}`,
    `  ${cri}.containerd]`,
    `    snapshotter = ${q(snapshotter)}`,
    '    default_runtime_name = "runc"',
    `    ${cri}.containerd.runtimes.runc]`,
    '      runtime_type = "io.containerd.runc.v2"',
    `      ${cri}.containerd.runtimes.runc.options]`,
    "        SystemdCgroup = false",
    `        Root = ${q(`${dir}/runc`)}`,
    "",
  ];
}

function configToml(
  dir: string,
  address: string,
  snapshotter: string,
  cri?: ContainerdOptions["cri"],
): string {
  const q = JSON.stringify; // a JSON string is a TOML basic string for these plain paths
  return [
    "version = 2",
    `root = ${q(`${dir}/root`)}`,
    `state = ${q(`${dir}/state`)}`,
    `temp = ${q(`${dir}/tmp`)}`,
    // CRI: slow to start, only on request. aufs would run modprobe; the others are skipped.
    "disabled_plugins = [",
    ...(cri ? [] : ['  "io.containerd.grpc.v1.cri",']),
    '  "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.snapshotter.v1.btrfs",',
    '  "io.containerd.snapshotter.v1.devmapper",',
    '  "io.containerd.snapshotter.v1.zfs",',
    "]",
    "",
    "[grpc]",
    `  address = ${q(address)}`,
    "",
    "[debug]",
    '  address = ""',
    "",
    "[metrics]",
    '  address = ""',
    "",
    // Its default, /opt/containerd, is created on the host otherwise.
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(`${dir}/opt`)}`,
    "",
    ...(cri ? criToml(dir, snapshotter, cri.sandboxImage) : []),
  ].join("\n");
}

/** Status of each snapshotter plugin (`ok`, `skip`, `error`) from `ctr plugins ls`. */
async function snapshotterStatus(
  ctr: PrivateContainerd["ctr"],
): Promise<Record<string, string>> {
  const out = (await ctr(["plugins", "ls"])).stdout;
  const status: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[0] === "io.containerd.snapshotter.v1" && f.length >= 4) status[f[1]] = f[f.length - 1];
  }
  return status;
}

/**
 * Starts a private containerd and waits (up to 20 s) until `ctr version` answers. Uses the
 * overlayfs snapshotter, or native when overlayfs did not load (`DBG_TEST_SNAPSHOTTER` or
 * `options.snapshotter` forces one). `options.cri` enables the CRI plugin. Also reaps instances
 * left by crashed runs.
 */
export async function startContainerd(
  options: ContainerdOptions = {},
): Promise<PrivateContainerd> {
  await reapStale();
  const forced = options.snapshotter || Deno.env.get("DBG_TEST_SNAPSHOTTER");
  let snapshotter = forced || "overlayfs";
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: DIR_PREFIX });
  await Deno.writeTextFile(`${dir}/owner.pid`, `${Deno.pid}\n`);
  for (const d of ["logs", "fifo", "runc", "tmp"]) await Deno.mkdir(`${dir}/${d}`);
  if (options.cri) {
    for (const d of ["cni/bin", "cni/conf"]) await Deno.mkdir(`${dir}/${d}`, { recursive: true });
  }
  const address = `${dir}/containerd.sock`;
  if (address.length + ".ttrpc".length > 100) throw new Error(`socket path too long: ${address}`);
  const config = `${dir}/config.toml`;
  await Deno.writeTextFile(config, configToml(dir, address, snapshotter, options.cri));
  const log = `${dir}/containerd.log`;
  const child = spawnLogged([
    ...[CONTAINERD, "--config", config, "--address", address],
    ...["--root", `${dir}/root`, "--state", `${dir}/state`, "--log-level", "info"],
  ], log);
  await Deno.writeTextFile(`${dir}/containerd.pid`, `${child.pid}\n`);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  let env = ctrEnv(snapshotter);
  let runs = 0;
  const ctrCommand = (args: string[], opts: Pick<CtrOptions, "namespace"> = {}) => {
    const ns = opts.namespace ?? "default";
    const argv = privateArgs(args, dir, ns, () => ++runs);
    return { argv: [CTR, "--address", address, "-n", ns, ...argv], env };
  };
  const ctr = (args: string[], opts: CtrOptions = {}) => {
    const { argv, env } = ctrCommand(args, opts);
    return sh(argv, { env, stdin: opts.stdin, check: opts.check });
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      // Bounded, so that a hung daemon cannot hang stop(): the teardown kills it anyway.
      await removeEverything((args, namespace) =>
        sh([CTR, "--address", address, "--timeout", "20s", "-n", namespace, ...args], {
          env,
          check: false,
        })
      );
    }
    await teardownDir(dir, exited ? null : child.pid);
    await status;
  };

  const deadline = Date.now() + 20_000;
  while (true) {
    if (exited || Date.now() > deadline) {
      const why = exited ? `exited with ${(await status).code}` : "did not answer within 20s";
      const logTail = await tail(log);
      await stop();
      throw new Error(`private containerd ${why}; log tail:\n${logTail}`);
    }
    const r = await ctr(["--connect-timeout", "2s", "version"], { check: false });
    if (r.code === 0) break;
    await sleep(100);
  }

  try {
    const plugins = await snapshotterStatus(ctr);
    if (plugins[snapshotter] !== "ok") {
      if (forced) throw new Error(`snapshotter ${forced} is ${plugins[forced] ?? "missing"}`);
      console.warn(`WARNING: containerd overlayfs snapshotter unavailable; using native`);
      if (options.cri) {
        // The CRI plugin's snapshotter is in the config: start again with native.
        await stop();
        return await startContainerd({ ...options, snapshotter: "native" });
      }
      snapshotter = "native";
      env = ctrEnv(snapshotter);
      if (plugins[snapshotter] !== "ok") throw new Error("native snapshotter did not load");
    }
  } catch (e) {
    const logTail = await tail(log);
    await stop();
    throw new Error(`private containerd: ${e instanceof Error ? e.message : e}\n${logTail}`);
  }
  return { address, dir, snapshotter, ctr, ctrCommand, stop };
}

/** Kills and deletes all tasks, then deletes all containers (and their snapshots), in all ns. */
async function removeEverything(
  run: (args: string[], namespace: string) => Promise<ShResult>,
): Promise<void> {
  const list = async (args: string[], namespace = "default") =>
    (await run(args, namespace)).stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  for (const ns of await list(["namespaces", "ls", "-q"])) {
    const tasks = await list(["tasks", "ls", "-q"], ns);
    await Promise.all(tasks.map((id) => run(["tasks", "rm", "-f", id], ns)));
    const containers = await list(["containers", "ls", "-q"], ns);
    if (containers.length > 0) await run(["containers", "rm", ...containers], ns);
  }
}

/**
 * Starts a private containerd, or (when not root or a binary is missing) returns null after a
 * warning; under `CI=true` a missing prerequisite throws instead.
 */
export async function containerdOrSkip(): Promise<PrivateContainerd | null> {
  if (!isRoot()) return missingPrerequisite("tests need root to run a private containerd");
  for (const bin of [CONTAINERD, CTR, SHIM, RUNC]) {
    if (!await exists(bin)) return missingPrerequisite(`${bin} (apt-get install docker.io)`);
  }
  return await startContainerd();
}

// ------------------------------------------------------------------------------------------------
// Images

/**
 * Path of the cached `docker save` tarball of the three test images (images.ts maintains it).
 * When it is missing, a private dockerd is started to build it, then stopped.
 */
export async function cachedImagesTarball(): Promise<string> {
  const path = await imageCacheTarball();
  if (await exists(path)) return path;
  const d = await startDockerd();
  try {
    await loadTestImages(d);
  } finally {
    await d.stop();
  }
  if (await exists(path)) return path;
  throw new Error(`${path} missing after loadTestImages()`);
}

async function imagesIn(c: PrivateContainerd, namespace: string): Promise<string[]> {
  const r = await c.ctr(["images", "ls", "-q"], { namespace });
  return r.stdout.split("\n").map((s) => s.trim()).filter(Boolean);
}

async function importTarball(c: PrivateContainerd, namespace: string, tar: string) {
  return await c.ctr(
    ["images", "import", "--all-platforms", "--snapshotter", c.snapshotter, tar],
    { namespace, check: false },
  );
}

/**
 * Makes the three test images available (and unpacked) in `namespace`, from the cached
 * `docker save` tarball. Their names there are {@link CTR_TEST_IMAGES}.
 */
export async function loadImagesInto(c: PrivateContainerd, namespace: string): Promise<void> {
  const have = async () => {
    const names = await imagesIn(c, namespace);
    return CTR_TEST_IMAGES.every((n) => names.includes(n));
  };
  if (await have()) return;
  let tar = await cachedImagesTarball();
  let r = await importTarball(c, namespace, tar);
  if (r.code !== 0 || !await have()) {
    await Deno.remove(tar).catch(() => {}); // corrupt: rebuild once
    tar = await cachedImagesTarball();
    r = await importTarball(c, namespace, tar);
  }
  if (r.code !== 0 || !await have()) {
    throw new Error(`ctr images import ${tar} into ${namespace} failed: ${r.stderr.trim()}`);
  }
}

/** Docker-save `manifest.json` entry. */
interface SaveEntry {
  Config: string;
  RepoTags?: string[];
  Layers: string[];
}

/**
 * Name of a copy of the target image whose config sets `User` to `user` (ctr 1.6's `run` has
 * no `--user`; the image's User ends up in the container's `process.user` the same way).
 * Imported into `namespace` on first use.
 */
export async function targetImageForUser(
  c: PrivateContainerd,
  namespace: string,
  user: string,
): Promise<string> {
  const ref = `dbg-test/target:user-${user.replace(/[^A-Za-z0-9_.-]/g, "-")}`;
  const name = imageName(ref);
  if ((await imagesIn(c, namespace)).includes(name)) return name;
  const src = await cachedImagesTarball();
  const manifest = JSON.parse(
    (await sh(["tar", "-xOf", src, "manifest.json"])).stdout,
  ) as SaveEntry[];
  const entry = manifest.find((m) => m.RepoTags?.includes(TARGET_IMAGE));
  if (!entry) throw new Error(`${TARGET_IMAGE} not in ${src}`);
  const work = await Deno.makeTempDir({ dir: `${c.dir}/tmp`, prefix: "user-image-" });
  try {
    await sh(["tar", "-xf", src, "-C", work, entry.Config, ...entry.Layers]);
    const cfg = JSON.parse(await Deno.readTextFile(`${work}/${entry.Config}`));
    cfg.config = { ...(cfg.config ?? {}), User: user };
    const bytes = new TextEncoder().encode(JSON.stringify(cfg));
    const cfgName = `${await sha256Hex(bytes)}.json`;
    await Deno.writeFile(`${work}/${cfgName}`, bytes);
    const out: SaveEntry[] = [{ Config: cfgName, RepoTags: [ref], Layers: entry.Layers }];
    await Deno.writeTextFile(`${work}/manifest.json`, JSON.stringify(out));
    const tar = `${work}/image.tar`;
    await sh(["tar", "-cf", tar, "-C", work, "manifest.json", cfgName, ...entry.Layers]);
    const r = await importTarball(c, namespace, tar);
    if (r.code !== 0) throw new Error(`import of ${ref} failed: ${r.stderr.trim()}`);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return name;
}

// ------------------------------------------------------------------------------------------------
// Targets

/** How to run a target container with ctr. */
export interface CtrTargetOpts {
  /** containerd namespace (e.g. `default`, or `k8s.io` to mimic Kubernetes). */
  namespace: string;
  /** Container id (also the task id and snapshot key). */
  id: string;
  /** User, e.g. `1000:1000` (through a copy of the image, see {@link targetImageForUser}). */
  user?: string;
  /** Read-only rootfs (`ctr run --read-only`: `root.readonly` in the spec). */
  readOnly?: boolean;
  /** Container labels, e.g. `io.kubernetes.pod.name`. */
  labels?: Record<string, string>;
  /** More `ctr run` flags, e.g. `--net-host`, `--with-ns pid:/proc/1/ns/pid`. */
  flags?: string[];
  /** The target's argv instead of the image's (e.g. `/app/target --drop 1000:1000`). */
  args?: string[];
}

/** Status and pid of task `id` from `ctr tasks ls` (null when there is no such task). */
export async function taskStatus(
  c: PrivateContainerd,
  namespace: string,
  id: string,
): Promise<{ pid: number; status: string } | null> {
  const out = (await c.ctr(["tasks", "ls"], { namespace })).stdout;
  for (const line of out.split("\n").slice(1)) {
    const [task, pid, status] = line.trim().split(/\s+/);
    if (task === id) return { pid: Number(pid), status };
  }
  return null;
}

/** Path of the stdout/stderr log of a target started by {@link runCtrTarget}. */
export function targetLog(c: PrivateContainerd, namespace: string, id: string): string {
  return `${c.dir}/logs/${namespace}-${id}.log`;
}

/**
 * Runs `dbg-test/target:latest` detached (`ctr run -d`): its own network namespace with only
 * loopback (ctr creates one unless `--net-host`; no CNI), output to a log file, cgroup
 * `/<instance>/<ns>/<id>`. Waits until the task is RUNNING and has printed "target started".
 */
export async function runCtrTarget(
  c: PrivateContainerd,
  o: CtrTargetOpts,
): Promise<{ id: string; pid: number }> {
  let image = CTR_TARGET_IMAGE;
  if (o.user) image = await targetImageForUser(c, o.namespace, o.user);
  else await loadImagesInto(c, o.namespace);
  const log = targetLog(c, o.namespace, o.id);
  const args = ["run", "-d", "--snapshotter", c.snapshotter, "--log-uri", `file://${log}`];
  args.push("--cgroup", `${cgroupParent(c.dir)}/${o.namespace}/${o.id}`);
  if (o.readOnly) args.push("--read-only");
  for (const [k, v] of Object.entries(o.labels ?? {})) args.push("--label", `${k}=${v}`);
  args.push(...o.flags ?? [], image, o.id, ...o.args ?? []);
  await c.ctr(args, { namespace: o.namespace });
  const deadline = Date.now() + 10_000;
  while (true) {
    const st = await taskStatus(c, o.namespace, o.id);
    const out = await Deno.readTextFile(log).catch(() => "");
    if (st?.status === "RUNNING" && out.includes("target started")) {
      return { id: o.id, pid: st.pid };
    }
    if (st?.status === "STOPPED" || Date.now() > deadline) {
      throw new Error(
        `ctr target ${o.namespace}/${o.id} did not start (task ${st?.status ?? "missing"}): ${out}`,
      );
    }
    await sleep(50);
  }
}

/** Every path in the upper (written) layer of a container's rootfs snapshot. */
export async function upperListing(
  c: { ctr(args: string[], o?: { namespace?: string }): Promise<{ stdout: string }> },
  id: string,
  namespace = "default",
): Promise<string[]> {
  const mounts = (await c.ctr(["snapshots", "mounts", "/mnt", id], { namespace })).stdout;
  const upper = /upperdir=([^,\s]+)/.exec(mounts)?.[1];
  if (!upper) throw new Error(`no upperdir in: ${mounts}`);
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of Deno.readDirSync(dir)) {
      out.push(`${rel}/${e.name}`);
      if (e.isDirectory) walk(`${dir}/${e.name}`, `${rel}/${e.name}`);
    }
  };
  walk(upper, "");
  return out.sort();
}
