/**
 * A private, real single-node Kubernetes for tests: etcd, kube-apiserver and a kubelet on a
 * private containerd with its CRI plugin (see containerd.ts), everything listening on 127.0.0.1
 * only and kept under a temp dir `/tmp/dbgk-XXXXXX` (certificates, tokens, kubeconfigs, data,
 * logs) plus the kubelet's cgroup root `/<basename of that dir>`.
 *
 * There is no scheduler and no controller manager: pods name their node (`nodeName: localhost`;
 * {@link PrivateCluster.applyPod} sets it when absent). They use the host network (applyPod's
 * default too) or, with `hostNetwork: false` (e.g. where Pod Security forbids the host's),
 * a network namespace of their own with only a loopback interface (a tiny CNI plugin, pod IP
 * 127.0.0.1). Without a namespace controller, deleted namespaces stay Terminating. The
 * `kubernetes` service has no endpoints (the API server advertises 127.0.0.1, which Endpoints
 * refuse; its log says so every few seconds).
 *
 * The binaries are built from the Go modules in scripts/cluster/ (their versions come from its
 * go.mod files) and cached in `${XDG_CACHE_HOME:-$HOME/.cache}/dbg-tests/cluster/`.
 *
 * The kubelet hard-codes a few host paths: it creates `/var/log/containers` (symlinks to its
 * pod logs) and `/var/lib/kubelet/device-plugins` (whose content it wipes: hence no cluster
 * where a real kubelet runs), containerd's CNI library caches results in `/var/lib/cni`, and
 * the kubelet sets six sysctls (vm.overcommit_memory, vm.panic_on_oom,
 * kernel.panic, kernel.panic_on_oops, kernel.keys.root_maxkeys and root_maxbytes). stop()
 * removes the symlinks and cached CNI results of its pods and, when no other cluster is alive
 * and no other kubelet runs, the directories and the sysctl values the first live cluster found.
 *
 * This file holds the cluster's interface and its startup; the parts live beside it:
 * cluster_build.ts (the binaries), cluster_pause.ts (the sandbox image), cluster_auth.ts
 * (certificates, kubeconfigs, RBAC), cluster_host.ts (CNI plugin, host state, cgroup root),
 * cluster_process.ts (daemons, readiness, teardown), cluster_api.ts and cluster_pods.ts.
 *
 * @module
 */

import { which } from "../../scripts/_images.ts";
import { type Api, apiRequest } from "./cluster_api.ts";
import {
  createLimitedRbac,
  kubeconfig,
  LIMITED_GROUP,
  makeCerts,
  writeSecret,
} from "./cluster_auth.ts";
import { binaryPlan, buildClusterBinaries, builtAlready, findGo } from "./cluster_build.ts";
import {
  createCgroupRoot,
  DIR_PREFIX,
  foreignKubelets,
  installCni,
  recordHost,
} from "./cluster_host.ts";
import { importPause, PAUSE_IMAGE, pauseTarball } from "./cluster_pause.ts";
import { applyPod, NODE_NAME } from "./cluster_pods.ts";
import {
  freePorts,
  kubeletConfig,
  listening,
  reapStale,
  spawnDaemon,
  StartupAborted,
  teardownDir,
  waitReady,
} from "./cluster_process.ts";
import {
  CONTAINERD,
  CTR,
  loadImagesInto,
  type PrivateContainerd,
  RUNC,
  SHIM,
  startContainerd,
} from "./containerd.ts";
import {
  cleanEnv,
  exists,
  killAll,
  missingPrerequisite,
  processRunning,
  readPid,
  sh,
  type ShResult,
  waitGone,
} from "./dockerd.ts";
import { basename, randomHex } from "./util.ts";

export { buildClusterBinaries } from "./cluster_build.ts";
export { LIMITED_GROUP } from "./cluster_auth.ts";

/** A user of the cluster: `admin` (group system:masters) or `limited` ({@link LIMITED_GROUP}). */
export type ClusterUser = "admin" | "limited";

/** Options of {@link PrivateCluster.kubectl}. */
export interface KubectlOptions {
  /** Whose kubeconfig to use (default `admin`). */
  user?: ClusterUser;
  /** Text written to kubectl's stdin (stdin is closed when absent). */
  stdin?: string;
  /** Throw when the exit code is not 0 (default true). */
  check?: boolean;
}

/** A running private cluster. */
export interface PrivateCluster {
  /** Temp dir holding everything of this instance (its basename names the cgroup root). */
  dir: string;
  /** URL of the API server, `https://127.0.0.1:<port>`. */
  server: string;
  /** Path of the CA certificate that signed the API server's and the kubelet's certificates. */
  caFile: string;
  /** Bearer tokens of the users (random per cluster). */
  tokens: Record<ClusterUser, string>;
  /**
   * Paths of a kubeconfig per user (in {@link dir}): cluster, user and context are all named
   * `dbg-<user>`; current-context is set, namespace `default`.
   */
  kubeconfig: Record<ClusterUser, string>;
  /** Path of kubectl (same version as the cluster). */
  kubectlPath: string;
  /** Directory of the cluster's binaries (etcd, kube-apiserver, kubelet, kubectl). */
  binDir: string;
  /** The containerd the kubelet runs pods on (CRI namespace `k8s.io`). */
  containerd: PrivateContainerd;
  /**
   * Runs `kubectl --kubeconfig <user's kubeconfig> …` (KUBECONFIG, proxies and Docker settings
   * removed from the environment; discovery cache in the instance dir).
   */
  kubectl(args: string[], opts?: KubectlOptions): Promise<ShResult>;
  /**
   * Creates (`kubectl apply`) a pod in `namespace` (default: its `metadata.namespace`, else
   * `default`) and waits up to 60 s until it is Running with all containers ready; returns the
   * pod as the API server last reported it. `apiVersion`, `kind`, `spec.nodeName`
   * ({@link NODE_NAME}) and `spec.hostNetwork` (true) are filled in when absent. Throws with
   * `kubectl describe` output when the pod fails or times out.
   */
  applyPod(
    pod: Record<string, unknown>,
    namespace?: string,
  ): Promise<Record<string, unknown>>;
  /** Creates (or updates: `kubectl apply`) namespace `name` with `labels`. */
  createNamespace(name: string, labels?: Record<string, string>): Promise<void>;
  /**
   * SIGKILLs the kubelet, as on a node that died: the pod's containers keep running, and the
   * API server still reports the pod as it was (no controller marks the node NotReady).
   */
  killKubelet(): Promise<void>;
  /** Starts the kubelet again (after {@link killKubelet}); resolves once it serves. */
  startKubelet(): Promise<void>;
  /**
   * Stops everything: the kubelet first, then (in parallel) every CRI pod and container with
   * the containerd (see {@link PrivateContainerd.stop}), the API server and etcd; kills what is
   * left in the cgroup root, removes it, unmounts below the dir, undoes the kubelet's host
   * changes (see the module doc) and removes the dir. Idempotent.
   */
  stop(): Promise<void>;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Starts a private cluster (see the module doc) and waits until the API server is ready, the
 * RBAC of the limited user exists, the node is registered and the pause and test images are in
 * containerd's `k8s.io` namespace. Takes a few seconds once the binaries are built (see
 * {@link buildClusterBinaries}). Also reaps instances left by crashed runs. Throws, after
 * cleaning up, with the log tail of what failed.
 */
export async function startCluster(): Promise<PrivateCluster> {
  const binDir = await buildClusterBinaries();
  const foreign = await foreignKubelets();
  if (foreign.length > 0) {
    throw new Error(`a kubelet with root dir /var/lib/kubelet runs (pid ${foreign.join(", ")})`);
  }
  await reapStale();
  const [etcdPort, etcdPeerPort, apiPort, kubeletPort] = freePorts(4);
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: DIR_PREFIX });
  await Deno.writeTextFile(`${dir}/owner.pid`, `${Deno.pid}\n`);
  const name = basename(dir);
  const bin = (b: string) => `${binDir}/${b}`;
  const at = (file: string) => `${dir}/${file}`;
  const server = `https://127.0.0.1:${apiPort}`;
  const caFile = at("ca.crt");
  const tokens = { admin: randomHex(16), limited: randomHex(16) };
  const nodeToken = randomHex(16);
  const kubeconfigs = { admin: at("admin.kubeconfig"), limited: at("limited.kubeconfig") };

  let containerd: PrivateContainerd | null = null;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await teardownDir(dir, containerd);
  };

  let caCert = ""; // read once the certificates exist
  const api: Api = (method, path, body) =>
    apiRequest({ port: apiPort, caCert, token: tokens.admin }, method, path, body);
  const apiOk = async (path: string) => (await api("GET", path)).status === 200;

  let failed = false;
  const aborted = () => failed;
  const task = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e) => {
      failed = true;
      throw e;
    });

  const files = task((async () => {
    await makeCerts(dir);
    await writeSecret(
      at("tokens.csv"),
      [
        `${tokens.admin},admin,admin,system:masters`,
        `${nodeToken},system:node:${NODE_NAME},node,system:masters`,
        `${tokens.limited},limited,limited,${LIMITED_GROUP}`,
        "",
      ].join("\n"),
    );
    for (const user of ["admin", "limited"] as const) {
      await writeSecret(kubeconfigs[user], kubeconfig(`dbg-${user}`, server, caFile, tokens[user]));
    }
    await writeSecret(
      at("kubelet.kubeconfig"),
      kubeconfig("dbg-node", server, caFile, nodeToken),
    );
  })());

  const etcd = task((async () => {
    const peer = `http://127.0.0.1:${etcdPeerPort}`;
    const url = `http://127.0.0.1:${etcdPort}`;
    const d = await spawnDaemon(dir, "etcd", [
      ...[bin("etcd"), "--name", "default", "--data-dir", at("etcd")],
      ...["--listen-client-urls", url, "--advertise-client-urls", url],
      ...["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer],
      ...["--initial-cluster", `default=${peer}`, "--log-level", "warn"],
    ]);
    await waitReady(d, "listening", 30_000, () => listening(etcdPort), aborted);
  })());

  const runtime = task((async () => {
    const c = await startContainerd({ cri: { sandboxImage: PAUSE_IMAGE } });
    containerd = c;
    await Deno.writeTextFile(at("containerd.dir"), `${c.dir}\n`);
    await installCni(c, dir);
    return c;
  })());

  const apiServing = task((async () => {
    await Promise.all([files, etcd]);
    caCert = await Deno.readTextFile(caFile);
    const d = await spawnDaemon(dir, "kube-apiserver", [
      bin("kube-apiserver"),
      ...["--etcd-servers", `http://127.0.0.1:${etcdPort}`],
      ...["--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1"],
      ...["--secure-port", `${apiPort}`, "--cert-dir", at("apiserver-certs")],
      ...["--service-cluster-ip-range", "10.0.0.0/24", "--allow-privileged=true"],
      ...["--token-auth-file", at("tokens.csv"), "--authorization-mode", "RBAC"],
      ...["--client-ca-file", caFile],
      ...["--tls-cert-file", at("apiserver.crt"), "--tls-private-key-file", at("apiserver.key")],
      ...["--service-account-issuer", "https://kubernetes.default.svc"],
      ...["--service-account-key-file", at("sa.pub")],
      ...["--service-account-signing-key-file", at("sa.key")],
      ...["--kubelet-client-certificate", at("apiserver-kubelet-client.crt")],
      ...["--kubelet-client-key", at("apiserver-kubelet-client.key")],
      ...["--kubelet-certificate-authority", caFile],
      // The node is "localhost": the kubelet refuses a loopback node IP, so the API server
      // reaches it by its Hostname address, which its serving certificate names.
      ...["--kubelet-preferred-address-types", "Hostname"],
      ...["--disable-admission-plugins", "ServiceAccount", "--enable-priority-and-fairness=false"],
    ]);
    // Serving: it answers an authenticated request (which /readyz does a second or two later).
    await waitReady(d, "serving", 60_000, () => apiOk("/api/v1/nodes"), aborted);
    return d;
  })());

  const apiReady = task((async () => {
    const d = await apiServing;
    await waitReady(d, "ready", 60_000, () => apiOk("/readyz"), aborted);
    await createLimitedRbac(api);
    await waitReady(
      d,
      "serving namespace default",
      30_000,
      () => apiOk("/api/v1/namespaces/default"),
      aborted,
    );
  })());

  const images = task((async () => {
    const [c, pause] = await Promise.all([runtime, pauseTarball()]);
    await Promise.all([importPause(c, pause), loadImagesInto(c, "k8s.io")]);
  })());

  const kubeletArgv = [
    ...[bin("kubelet"), "--config", at("kubelet.yaml")],
    ...["--kubeconfig", at("kubelet.kubeconfig"), "--root-dir", at("kubelet")],
    ...["--cert-dir", at("kubelet/pki"), "--hostname-override", NODE_NAME],
  ];
  const kubelet = task((async () => {
    const [c] = await Promise.all([runtime, files, apiServing]);
    await createCgroupRoot(name);
    await recordHost(dir);
    const config = kubeletConfig(dir, {
      port: kubeletPort,
      caFile,
      cgroupRoot: `/${name}`,
      runtime: c.address,
    });
    await Deno.writeTextFile(at("kubelet.yaml"), JSON.stringify(config, null, 2) + "\n");
    const d = await spawnDaemon(dir, "kubelet", kubeletArgv);
    await waitReady(d, "registered", 60_000, () => apiOk(`/api/v1/nodes/${NODE_NAME}`), aborted);
  })());

  const results = await Promise.allSettled([
    ...[files, etcd, runtime, apiServing, apiReady, images, kubelet],
  ]);
  // Tasks that waited for a failed one fail with its very error: report each once.
  const errors = [...new Set(results.flatMap((r) => r.status === "rejected" ? [r.reason] : []))];
  if (errors.length > 0) {
    const causes = errors.filter((e) => !(e instanceof StartupAborted));
    await stop();
    throw new Error(
      `private cluster did not start: ${
        (causes.length ? causes : errors).map(errorText).join("\n\n")
      }`,
    );
  }

  const kubectlPath = bin("kubectl");
  const env = cleanEnv({ KUBECACHEDIR: at("kubectl-cache") });
  delete env.KUBECONFIG;
  const kubectl = (args: string[], opts: KubectlOptions = {}) =>
    sh([kubectlPath, "--kubeconfig", kubeconfigs[opts.user ?? "admin"], ...args], {
      env,
      stdin: opts.stdin,
      check: opts.check,
    });

  const killKubelet = async () => {
    const pid = await readPid(at("kubelet.pid"));
    if (pid === null || !processRunning(pid)) return;
    killAll([pid], "SIGKILL");
    if (!await waitGone([pid], 5_000)) throw new Error(`kubelet ${pid} did not die`);
  };
  const startKubelet = async () => {
    const d = await spawnDaemon(dir, "kubelet", kubeletArgv);
    await waitReady(d, "serving", 60_000, () => listening(kubeletPort), () => false);
  };

  const createNamespace = async (nsName: string, labels: Record<string, string> = {}) => {
    const ns = { apiVersion: "v1", kind: "Namespace", metadata: { name: nsName, labels } };
    await kubectl(["apply", "-f", "-"], { stdin: JSON.stringify(ns) });
  };

  return {
    dir,
    server,
    caFile,
    tokens,
    kubeconfig: kubeconfigs,
    kubectlPath,
    binDir,
    containerd: await runtime,
    kubectl,
    applyPod: (pod, namespace) => applyPod(kubectl, api, pod, namespace),
    createNamespace,
    killKubelet,
    startKubelet,
    stop,
  };
}

/**
 * Starts a private cluster, or (when not root, or containerd, openssl, gcc or the Go toolchain
 * to build the binaries is missing, or a real kubelet runs) returns null after a warning; under
 * `CI=true` a missing prerequisite throws instead.
 */
export async function clusterOrSkip(): Promise<PrivateCluster | null> {
  if (Deno.uid() !== 0) return missingPrerequisite("tests need root to run a private cluster");
  for (const b of [CONTAINERD, CTR, SHIM, RUNC]) {
    if (!await exists(b)) return missingPrerequisite(`${b} (apt-get install docker.io)`);
  }
  for (const tool of ["openssl", "gcc", "tar", "nsenter", "ip"]) {
    if (!await which(tool)) return missingPrerequisite(`${tool} (to set up a private cluster)`);
  }
  if (!await builtAlready(await binaryPlan()) && !await findGo()) {
    return missingPrerequisite("go (to build Kubernetes and etcd; see scripts/cluster.ts)");
  }
  const foreign = await foreignKubelets();
  if (foreign.length > 0) {
    return missingPrerequisite(`a host without a real node's kubelet (pid ${foreign.join(", ")})`);
  }
  return await startCluster();
}
