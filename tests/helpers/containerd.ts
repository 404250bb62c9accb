/**
 * A private containerd for tests (Debian's 1.6 from docker.io): its own root, state, socket,
 * runc root, FIFO dir and cgroup parent, all under a short temp dir in /tmp. It never touches a
 * system containerd or /run/containerd/containerd.sock. The one thing it cannot keep private is
 * the shim sockets: containerd 1.6 hard-codes `/run/containerd/s/<sha256>`; stop() removes the
 * ones of shims it had to kill.
 *
 * This file holds the daemon's interface, ctr and startup; the parts live beside it:
 * containerd_config.ts, containerd_teardown.ts, containerd_cgroups.ts, containerd_images.ts
 * (test images) and containerd_targets.ts (ctr targets).
 *
 * @module
 */

import { cgroupParent } from "./containerd_cgroups.ts";
import { configToml } from "./containerd_config.ts";
import { DIR_PREFIX, reapStale, removeEverything, teardownDir } from "./containerd_teardown.ts";
import {
  cleanEnv,
  exists,
  missingPrerequisite,
  sh,
  type ShResult,
  spawnLogged,
} from "./dockerd.ts";
import { sleep, tail } from "./util.ts";

export {
  CTR_BUSYBOX_IMAGE,
  CTR_NIXERY_IMAGE,
  CTR_TARGET_IMAGE,
  CTR_TEST_IMAGES,
  loadImagesInto,
  targetImageForUser,
} from "./containerd_images.ts";
export { runCtrTarget, taskStatus, upperListing } from "./containerd_targets.ts";

/** Path of the containerd daemon (Debian's containerd package, pulled in by docker.io). */
export const CONTAINERD = "/usr/bin/containerd";
/** Path of containerd's CLI. */
export const CTR = "/usr/bin/ctr";
/** Path of the runc v2 shim that containerd starts per container. */
export const SHIM = "/usr/bin/containerd-shim-runc-v2";
/** Path of runc. */
export const RUNC = "/usr/sbin/runc";

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

function isRoot(): boolean {
  return Deno.uid() === 0;
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
