/**
 * The processes of the private cluster (cluster.ts): spawning its daemons with their logs and
 * pid files, waiting until they are ready, free ports, and stopping everything of an instance
 * dir (also for the dirs of crashed runs).
 *
 * @module
 */

import { cgroupRootLeft, DIR_PREFIX, restoreHost } from "./cluster_host.ts";
import type { PrivateContainerd } from "./containerd.ts";
import { pidsInCgroups, removeCgroups } from "./containerd_cgroups.ts";
import {
  killAll,
  pidsMentioning,
  processRunning,
  readPid,
  reapStaleDirs,
  sh,
  spawnLogged,
  unmountBelow,
  waitGone,
} from "./dockerd.ts";
import { basename, sleep, tail } from "./util.ts";

/** Distinct free TCP ports on 127.0.0.1 (held together while picked, then released). */
export function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/** A daemon of the cluster, its output in `<dir>/<name>.log`, its pid in `<dir>/<name>.pid`. */
export interface Daemon {
  name: string;
  log: string;
  pid: number;
  exited: boolean;
  status: Promise<Deno.CommandStatus>;
}

export async function spawnDaemon(dir: string, name: string, argv: string[]): Promise<Daemon> {
  const log = `${dir}/${name}.log`;
  const child = spawnLogged(argv, log);
  await Deno.writeTextFile(`${dir}/${name}.pid`, `${child.pid}\n`);
  const d: Daemon = { name, log, pid: child.pid, exited: false, status: child.status };
  d.status = child.status.then((s) => {
    d.exited = true;
    return s;
  });
  return d;
}

/**
 * The KubeletConfiguration of the kubelet of instance dir `dir`: serving on 127.0.0.1:`port`
 * with the certificate in the dir, clients authenticated by `caFile`, cgroupfs under
 * `cgroupRoot`, CRI at unix socket `runtime`, and no eviction or image GC to speak of.
 */
export function kubeletConfig(
  dir: string,
  o: { port: number; caFile: string; cgroupRoot: string; runtime: string },
): Record<string, unknown> {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: "127.0.0.1",
    port: o.port,
    readOnlyPort: 0,
    healthzPort: 0,
    tlsCertFile: `${dir}/kubelet.crt`,
    tlsPrivateKeyFile: `${dir}/kubelet.key`,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: o.caFile },
    },
    authorization: { mode: "AlwaysAllow" },
    cgroupDriver: "cgroupfs",
    cgroupRoot: o.cgroupRoot,
    cgroupsPerQOS: true,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${o.runtime}`,
    imageServiceEndpoint: `unix://${o.runtime}`,
    podLogsDir: `${dir}/pod-logs`,
    volumePluginDir: `${dir}/volume-plugins`,
    resolvConf: "",
    enforceNodeAllocatable: [],
    evictionHard: {
      "memory.available": "1Mi",
      "nodefs.available": "1%",
      "imagefs.available": "1%",
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    syncFrequency: "5s",
    fileCheckFrequency: "5s",
  };
}

/** Thrown by waits of a startup that already failed elsewhere. */
export class StartupAborted extends Error {}

/**
 * Polls `ready` every 100 ms until it is true; throws (with the daemon's log tail) when the
 * daemon exits, after `ms`, or when `aborted()` says startup failed elsewhere.
 */
export async function waitReady(
  d: Daemon,
  what: string,
  ms: number,
  ready: () => Promise<boolean>,
  aborted: () => boolean,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (true) {
    if (aborted()) throw new StartupAborted(`${what}: aborted`);
    if (await ready().catch(() => false)) return;
    if (d.exited || Date.now() > deadline) {
      const why = d.exited
        ? `exited with code ${(await d.status).code}`
        : `not ${what} within ${ms / 1000}s`;
      throw new Error(`${d.name} ${why}; log tail (${d.log}):\n${await tail(d.log)}`);
    }
    await sleep(100);
  }
}

/** True once something accepts TCP connections on 127.0.0.1:`port`. */
export async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops every process of an instance dir (kubelet first, then containerd's pods when given,
 * then the API server and etcd), its cgroups and mounts, the kubelet's host changes, and
 * removes the dir. Only processes whose command line names the dir are signalled.
 */
export async function teardownDir(
  dir: string,
  containerd: PrivateContainerd | null,
): Promise<void> {
  const mine = new Set(await pidsMentioning(dir));
  // All state goes with the dir: a short grace (the API server takes over a second), then KILL.
  const stopDaemon = async (name: string, graceMs: number) => {
    const pid = await readPid(`${dir}/${name}.pid`);
    if (pid === null || !mine.has(pid) || !processRunning(pid)) return;
    killAll([pid], "SIGTERM");
    if (!await waitGone([pid], graceMs)) killAll([pid], "SIGKILL");
    await waitGone([pid], 5_000);
  };
  await stopDaemon("kubelet", 5_000);
  // With the kubelet gone nothing recreates pods: the rest can stop in parallel.
  await Promise.all([
    containerd?.stop(),
    stopDaemon("kube-apiserver", 1_000),
    stopDaemon("etcd", 1_000),
  ]);
  const rest = await pidsMentioning(dir);
  killAll(rest, "SIGKILL");
  await waitGone(rest, 5_000);
  const name = basename(dir);
  for (let i = 0; i < 10; i++) {
    const inside = await pidsInCgroups([`/${name}`]);
    killAll(inside, "SIGKILL");
    await waitGone(inside, 5_000);
    await removeCgroups([`/${name}`]);
    if (!await cgroupRootLeft(name)) break;
    await sleep(200);
  }
  await unmountBelow(dir);
  await restoreHost(dir);
  await Deno.remove(dir, { recursive: true }).catch(async () => {
    await sh(["rm", "-rf", dir], { check: false });
  });
}

/**
 * Removes instance dirs left by crashed runs (their owner process is gone). Their containerd
 * is reaped by the next startContainerd().
 */
export function reapStale(): Promise<void> {
  return reapStaleDirs(DIR_PREFIX, "etcd.pid", (dir) => teardownDir(dir, null));
}
