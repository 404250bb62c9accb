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
 * @module
 */

import { which } from "../../scripts/_images.ts";
import {
  CONTAINERD,
  CTR,
  loadImagesInto,
  pidsInCgroups,
  type PrivateContainerd,
  removeCgroups,
  RUNC,
  SHIM,
  startContainerd,
} from "./containerd.ts";
import {
  cleanEnv,
  exists,
  killAll,
  missingPrerequisite,
  pidsMentioning,
  processRunning,
  readPid,
  reapStaleDirs,
  sh,
  type ShResult,
  spawnLogged,
  unmountBelow,
  waitGone,
} from "./dockerd.ts";
import { imageCacheDir } from "./images.ts";

/** The node's name (`--hostname-override`); pods run there with `spec.nodeName` set to it. */
export const NODE_NAME = "localhost";
/** The pod sandbox image, a static `pause` built locally (imported into namespace `k8s.io`). */
export const PAUSE_IMAGE = "dbg.test/pause:1";
/** RBAC group of the `limited` user, bound to ClusterRole {@link LIMITED_ROLE}. */
export const LIMITED_GROUP = "dbg:limited";
/**
 * ClusterRole of the `limited` user: get/list/watch pods, get pods/log, get+create pods/attach,
 * and not patch/update pods/ephemeralcontainers (so `kubectl debug` is forbidden).
 */
export const LIMITED_ROLE = "dbg-limited";

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

/** Prefix of the temp dirs of private clusters (used to reap leftovers of crashed runs). */
const DIR_PREFIX = "dbgk-";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function tailOf(text: string, lines = 30): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function tail(path: string, lines = 30): Promise<string> {
  try {
    return tailOf(await Deno.readTextFile(path), lines);
  } catch {
    return "(no log)";
  }
}

async function sha256Hex(data: Uint8Array<ArrayBuffer> | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ------------------------------------------------------------------------------------------------
// Binaries

/** The Go modules of the binaries (scripts/cluster/ and its etcd/ module). */
const MODULE_DIR = new URL("../../scripts/cluster/", import.meta.url);
/** The files whose content decides whether cached binaries are current. */
const MODULE_FILES = ["go.mod", "go.sum", "etcd/go.mod", "etcd/go.sum", "etcd/main.go"];
/** The Kubernetes commands built from k8s.io/kubernetes (the `tool` lines of go.mod). */
const K8S_COMMANDS = ["kube-apiserver", "kubelet", "kubectl"];
/** Written into the bin dir after a complete build: the hash of the inputs. */
const STAMP = ".complete";

/** What {@link buildClusterBinaries} builds and where. */
interface BinaryPlan {
  binDir: string;
  kubernetes: string;
  etcd: string;
  ldflags: string;
  stamp: string;
}

function cacheBase(): string {
  return Deno.env.get("XDG_CACHE_HOME") || `${Deno.env.get("HOME") ?? "/root"}/.cache`;
}

/** The version a go.mod requires of `module` (a `require` line, alone or in a block). */
function requiredVersion(goMod: string, module: string, file: string): string {
  const esc = module.replace(/[.\/]/g, "\\$&");
  const m = new RegExp(`^\\s*(?:require\\s+)?${esc}\\s+(v[^\\s]+)`, "m").exec(goMod);
  if (!m) throw new Error(`${file}: no requirement of ${module}`);
  return m[1];
}

async function binaryPlan(): Promise<BinaryPlan> {
  const files = await Promise.all(
    MODULE_FILES.map((f) => Deno.readTextFile(new URL(f, MODULE_DIR))),
  );
  const kubernetes = requiredVersion(files[0], "k8s.io/kubernetes", "scripts/cluster/go.mod");
  const etcd = requiredVersion(
    files[2],
    "go.etcd.io/etcd/server/v3",
    "scripts/cluster/etcd/go.mod",
  );
  const v = /^v(\d+)\.(\d+)\.(\d+)$/.exec(kubernetes);
  if (!v) throw new Error(`scripts/cluster/go.mod: unexpected k8s.io/kubernetes ${kubernetes}`);
  // k8s.io/kubernetes maps its staging modules to ./staging: go.mod replaces each with its
  // published version, v0.<minor>.<patch>, which must match.
  const staging = `v0.${v[2]}.${v[3]}`;
  for (const [, mod, to] of files[0].matchAll(/^\s*(k8s\.io\/\S+) => \S+ (v\S+)/gm)) {
    if (to !== staging) {
      throw new Error(`scripts/cluster/go.mod: ${mod} => ${to}, want ${staging} (${kubernetes})`);
    }
  }
  const ldflags = [
    "-s",
    ...["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"].flatMap((pkg) => [
      `-X ${pkg}.gitVersion=${kubernetes}`,
      `-X ${pkg}.gitMajor=${v[1]}`,
      `-X ${pkg}.gitMinor=${v[2]}`,
    ]),
  ].join(" ");
  return {
    binDir: `${cacheBase()}/dbg-tests/cluster/k8s-${kubernetes}-etcd-${etcd}`,
    kubernetes,
    etcd,
    ldflags,
    stamp: await sha256Hex([...files, ldflags].join("\0")),
  };
}

async function builtAlready(plan: BinaryPlan): Promise<boolean> {
  const stamp = await Deno.readTextFile(`${plan.binDir}/${STAMP}`).catch(() => "");
  return stamp.trim() === plan.stamp;
}

/** The Go toolchain: `go` on PATH, else /usr/local/go/bin/go; null when neither exists. */
async function findGo(): Promise<string | null> {
  const onPath = await which("go");
  if (onPath) return onPath;
  return await exists("/usr/local/go/bin/go") ? "/usr/local/go/bin/go" : null;
}

/**
 * Builds etcd, kube-apiserver, kubelet and kubectl from scripts/cluster/ (versions from its
 * go.mod files; about 6 minutes on a fresh machine) into
 * `${XDG_CACHE_HOME:-$HOME/.cache}/dbg-tests/cluster/k8s-<version>-etcd-<version>/`, or finds
 * them there (a stamp file marks a complete build of the current inputs). Returns that dir.
 */
export async function buildClusterBinaries(): Promise<string> {
  const plan = await binaryPlan();
  if (await builtAlready(plan)) return plan.binDir;
  const go = await findGo();
  if (!go) throw new Error("go not found (PATH, /usr/local/go/bin): needed to build the cluster");
  console.log(
    `building Kubernetes ${plan.kubernetes} and etcd ${plan.etcd} into ${plan.binDir} ` +
      "(about 6 min the first time)",
  );
  const parent = plan.binDir.slice(0, plan.binDir.lastIndexOf("/"));
  await Deno.mkdir(parent, { recursive: true });
  const tmp = `${plan.binDir}.tmp-${Deno.pid}`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp);
  try {
    // Go gets the whole environment (module proxy settings and the like).
    const build = (module: URL, args: string[]) =>
      sh([go, "build", "-trimpath", "-buildvcs=false", ...args], {
        cwd: decodeURIComponent(module.pathname),
        env: Deno.env.toObject(),
        check: false,
      });
    const results = await Promise.all([
      build(MODULE_DIR, [
        ...["-ldflags", plan.ldflags, "-o", `${tmp}/`],
        ...K8S_COMMANDS.map((c) => `k8s.io/kubernetes/cmd/${c}`),
      ]),
      build(new URL("etcd/", MODULE_DIR), ["-ldflags=-s", "-o", `${tmp}/etcd`, "."]),
    ]);
    for (const r of results) {
      if (r.code !== 0) throw new Error(`go build failed:\n${tailOf(r.stderr + r.stdout)}`);
    }
    await Deno.writeTextFile(`${tmp}/${STAMP}`, `${plan.stamp}\n`);
    if (!await builtAlready(plan)) { // else a concurrent build finished first
      await Deno.remove(plan.binDir, { recursive: true }).catch(() => {});
      await Deno.rename(tmp, plan.binDir).catch(async (e) => {
        if (!await builtAlready(plan)) throw e; // else a concurrent build won the race
      });
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  // Builds of other versions, and temp dirs of builds whose process is gone.
  for await (const e of Deno.readDir(parent)) {
    const path = `${parent}/${e.name}`;
    const pid = /\.tmp-(\d+)$/.exec(e.name)?.[1];
    const stale = pid ? !processRunning(Number(pid)) : path !== plan.binDir;
    if (stale && e.name.startsWith("k8s-")) await Deno.remove(path, { recursive: true });
  }
  return plan.binDir;
}

// ------------------------------------------------------------------------------------------------
// Pause image

/** The sandbox's process: sleeps, reaps children, exits 0 on SIGINT/SIGTERM. */
const PAUSE_C = `#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = quit;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) pause();
}
`;

const PAUSE_CFLAGS = ["-static", "-O2", "-s"];

/** Go's name of the host architecture, as image configs spell it. */
function goArch(): string {
  return ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch] ??
    Deno.build.arch;
}

/**
 * Path of a `docker save` tarball of {@link PAUSE_IMAGE} (one layer with /pause), cached in the
 * test image cache under a hash of its source; built with `gcc -static` when missing.
 */
async function pauseTarball(): Promise<string> {
  const key = (await sha256Hex([PAUSE_C, ...PAUSE_CFLAGS, goArch()].join("\0"))).slice(0, 24);
  const cacheDir = imageCacheDir();
  const path = `${cacheDir}/pause-${key}.tar`;
  if (await exists(path)) return path;
  const work = await Deno.makeTempDir({ prefix: "dbg-pause-" });
  try {
    await Deno.writeTextFile(`${work}/pause.c`, PAUSE_C);
    await Deno.mkdir(`${work}/rootfs`);
    await sh(["gcc", ...PAUSE_CFLAGS, "-o", `${work}/rootfs/pause`, `${work}/pause.c`]);
    const layerTar = `${work}/layer.tar`;
    await sh([
      ...["tar", "--numeric-owner", "--owner=0", "--group=0", "--mtime=@0"],
      ...["-cf", layerTar, "-C", `${work}/rootfs`, "pause"],
    ]);
    const diffId = await sha256Hex(await Deno.readFile(layerTar));
    await Deno.mkdir(`${work}/image/${diffId}`, { recursive: true });
    await Deno.rename(layerTar, `${work}/image/${diffId}/layer.tar`);
    const config = new TextEncoder().encode(JSON.stringify({
      architecture: goArch(),
      os: "linux",
      config: { Entrypoint: ["/pause"] },
      rootfs: { type: "layers", diff_ids: [`sha256:${diffId}`] },
    }));
    const configName = `${await sha256Hex(config)}.json`;
    await Deno.writeFile(`${work}/image/${configName}`, config);
    const manifest = [{
      Config: configName,
      RepoTags: [PAUSE_IMAGE],
      Layers: [`${diffId}/layer.tar`],
    }];
    await Deno.writeTextFile(`${work}/image/manifest.json`, JSON.stringify(manifest));
    await Deno.mkdir(cacheDir, { recursive: true });
    const tmp = `${path}.${Deno.pid}.tmp`;
    await sh([
      ...["tar", "--numeric-owner", "--owner=0", "--group=0", "-cf", tmp, "-C", `${work}/image`],
      ...["manifest.json", configName, `${diffId}/layer.tar`],
    ]);
    await Deno.rename(tmp, path); // atomic: concurrent runs never see half a tarball
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  for await (const e of Deno.readDir(cacheDir)) {
    const stale = e.name.startsWith("pause-") && e.name !== basename(path) &&
      !e.name.endsWith(".tmp");
    if (stale) await Deno.remove(`${cacheDir}/${e.name}`).catch(() => {});
  }
  return path;
}

async function importPause(c: PrivateContainerd, tar: string): Promise<void> {
  await c.ctr(
    ["images", "import", "--all-platforms", "--snapshotter", c.snapshotter, tar],
    { namespace: "k8s.io" },
  );
}

// ------------------------------------------------------------------------------------------------
// Certificates and configuration files

const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

/** ECDSA P-256 keys: generated instantly, unlike RSA ones. */
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Writes into `dir`: a CA (ca.crt/key), the API server's serving certificate, its client
 * certificate for the kubelet (O=system:masters), the kubelet's serving certificate (CN
 * localhost) and the service-account RSA key pair (sa.key/sa.pub).
 */
async function makeCerts(dir: string): Promise<void> {
  const cnf = `${dir}/openssl.cnf`;
  await Deno.writeTextFile(cnf, OPENSSL_CNF);
  const openssl = (args: string[]) => sh(["openssl", ...args], { env: cleanEnv() });
  const saKeys = async () => {
    await openssl(
      ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", `${dir}/sa.key`],
    );
    await openssl(["pkey", "-in", `${dir}/sa.key`, "-pubout", "-out", `${dir}/sa.pub`]);
  };
  const leaf = async (name: string, subject: string, ext: "server" | "client") => {
    const [key, csr, crt] = ["key", "csr", "crt"].map((x) => `${dir}/${name}.${x}`);
    await openssl([
      ...["req", "-new", "-config", cnf, ...EC_KEY, "-keyout", key, "-out", csr],
      ...["-subj", subject],
    ]);
    await openssl([
      ...["x509", "-req", "-in", csr, "-CA", `${dir}/ca.crt`, "-CAkey", `${dir}/ca.key`],
      ...["-set_serial", `0x${randomHex(16)}`, "-days", "3650"],
      ...["-extfile", cnf, "-extensions", ext, "-out", crt],
    ]);
  };
  const caAndLeaves = async () => {
    await openssl([
      ...["req", "-x509", "-config", cnf, "-extensions", "ca", ...EC_KEY],
      ...["-keyout", `${dir}/ca.key`, "-out", `${dir}/ca.crt`, "-days", "3650"],
      ...["-subj", "/CN=dbg-test-ca"],
    ]);
    const kubeletClient = "/O=system:masters/CN=kube-apiserver-kubelet-client";
    await Promise.all([
      leaf("apiserver", "/CN=kube-apiserver", "server"),
      leaf("apiserver-kubelet-client", kubeletClient, "client"),
      leaf("kubelet", "/CN=localhost", "server"),
    ]);
  };
  await Promise.all([saKeys(), caAndLeaves()]); // RSA key generation takes the longest
}

/** A kubeconfig (JSON, which is YAML) for `name` with a bearer token. */
function kubeconfig(name: string, server: string, caFile: string, token: string): string {
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name, cluster: { server, "certificate-authority": caFile } }],
      users: [{ name, user: { token } }],
      contexts: [{ name, context: { cluster: name, user: name, namespace: "default" } }],
      "current-context": name,
    },
    null,
    2,
  ) + "\n";
}

/** Writes a file only root can read (tokens, keys). */
async function writeSecret(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { mode: 0o600 });
}

/** Distinct free TCP ports on 127.0.0.1 (held together while picked, then released). */
function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

// ------------------------------------------------------------------------------------------------
// Pod network

/** File of the instance dir listing the sandboxes the CNI plugin set up (one id a line). */
const CNI_SANDBOXES = "cni-sandboxes";

/**
 * The CNI plugin (a shell script) for pods without hostNetwork: their network namespace keeps
 * only its loopback interface, up; it reports 127.0.0.1 and records the sandbox in `record`.
 * containerd's CRI calls it as `loopback` (for `lo`) and as `dbg-loopback` (the network).
 */
function cniPlugin(record: string): string {
  return `#!/bin/sh
# CNI plugin of dbg's test cluster (tests/helpers/cluster.ts): only loopback, up.
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
  ADD)
    echo "$CNI_CONTAINERID" >>'${record}'
    nsenter --net="$CNI_NETNS" ip link set lo up || exit 1
    printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],\
"ips":[{"address":"127.0.0.1/8","interface":0}]}\\n' "$CNI_IFNAME" "$CNI_NETNS" ;;
  *) : ;;
esac
`;
}

/** Installs the loopback-only CNI plugin into a containerd started with `cri`. */
async function installCni(c: PrivateContainerd, clusterDir: string): Promise<void> {
  const script = cniPlugin(`${clusterDir}/${CNI_SANDBOXES}`);
  for (const name of ["loopback", "dbg-loopback"]) {
    await Deno.writeTextFile(`${c.dir}/cni/bin/${name}`, script, { mode: 0o755 });
  }
  const conf = { cniVersion: "1.0.0", name: "dbg-loopback", plugins: [{ type: "dbg-loopback" }] };
  await Deno.writeTextFile(`${c.dir}/cni/conf/10-dbg.conflist`, JSON.stringify(conf) + "\n");
}

// ------------------------------------------------------------------------------------------------
// Host state the kubelet touches

/** Sysctls the kubelet sets (`protectKernelDefaults: false`), relative to /proc/sys. */
const KUBELET_SYSCTLS = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
];
/** Directories the kubelet, or libcni in containerd, create whatever their configuration. */
const HOST_DIRS = [
  "/var/log/containers",
  "/var/lib/kubelet",
  "/var/lib/kubelet/device-plugins",
  "/var/lib/cni",
  "/var/lib/cni/results",
]; // outermost first
/** Where libcni caches the result of each ADD (`<network>-<container id>-<interface>`). */
const CNI_RESULTS = "/var/lib/cni/results";
/** The kubelet's device-plugin registration socket (hard-coded). */
const KUBELET_DEVICE_SOCKET = "/var/lib/kubelet/device-plugins/kubelet.sock";
/** Where the kubelet links container logs (hard-coded). */
const CONTAINER_LOG_LINKS = "/var/log/containers";

/** What the host looked like before the first live cluster's kubelet started. */
interface HostState {
  sysctls: Record<string, string>;
  createdDirs: string[];
}

/** Instance dirs of other clusters whose owner process is alive. */
async function otherLiveClusters(dir: string): Promise<string[]> {
  const live: string[] = [];
  for await (const e of Deno.readDir("/tmp")) {
    const other = `/tmp/${e.name}`;
    if (!e.isDirectory || !e.name.startsWith(DIR_PREFIX) || other === dir) continue;
    const owner = await readPid(`${other}/owner.pid`);
    if (owner !== null && processRunning(owner)) live.push(other);
  }
  return live;
}

/**
 * Records into `dir/host.json` the sysctls and kubelet directories as they are, or, when
 * another cluster is alive, as that one recorded them (the last to stop restores them).
 */
async function recordHost(dir: string): Promise<void> {
  for (const other of await otherLiveClusters(dir)) {
    const text = await Deno.readTextFile(`${other}/host.json`).catch(() => null);
    if (text !== null) return await Deno.writeTextFile(`${dir}/host.json`, text);
  }
  const state: HostState = { sysctls: {}, createdDirs: [] };
  for (const s of KUBELET_SYSCTLS) {
    const v = await Deno.readTextFile(`/proc/sys/${s}`).catch(() => null);
    if (v !== null) state.sysctls[s] = v.trim();
  }
  for (const d of HOST_DIRS) if (!await exists(d)) state.createdDirs.push(d);
  await Deno.writeTextFile(`${dir}/host.json`, JSON.stringify(state));
}

/** Undoes the kubelet's host changes (see the module doc), once its kubelet is gone. */
async function restoreHost(dir: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(CONTAINER_LOG_LINKS)) {
      const link = `${CONTAINER_LOG_LINKS}/${e.name}`;
      if (!e.isSymlink) continue;
      const target = await Deno.readLink(link).catch(() => "");
      if (target.startsWith(dir + "/")) await Deno.remove(link).catch(() => {});
    }
  } catch {
    // no such dir
  }
  const sandboxes = new Set(
    (await Deno.readTextFile(`${dir}/${CNI_SANDBOXES}`).catch(() => "")).split("\n")
      .filter(Boolean),
  );
  try {
    for await (const e of Deno.readDir(CNI_RESULTS)) {
      const id = /-([0-9a-f]{64})-[^-]+$/.exec(e.name)?.[1];
      if (id && sandboxes.has(id)) await Deno.remove(`${CNI_RESULTS}/${e.name}`).catch(() => {});
    }
  } catch {
    // no such dir
  }
  const text = await Deno.readTextFile(`${dir}/host.json`).catch(() => null);
  if (text === null || (await otherLiveClusters(dir)).length > 0) return;
  if ((await kubelets()).length > 0) return; // one not of these helpers (ours is gone)
  const state = JSON.parse(text) as HostState;
  for (const [s, v] of Object.entries(state.sysctls)) {
    const now = await Deno.readTextFile(`/proc/sys/${s}`).catch(() => v);
    if (now.trim() !== v) await Deno.writeTextFile(`/proc/sys/${s}`, v).catch(() => {});
  }
  if (state.createdDirs.length === 0) return;
  await Deno.remove(KUBELET_DEVICE_SOCKET).catch(() => {});
  // Only if empty: rmdir semantics.
  for (const d of [...state.createdDirs].reverse()) await Deno.remove(d).catch(() => {});
}

/** Running kubelets: pid and `--root-dir` (empty when not given). */
async function kubelets(): Promise<{ pid: number; rootDir: string }[]> {
  const found: { pid: number; rootDir: string }[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
      if (basename(argv[0]) !== "kubelet" || !processRunning(pid)) continue;
      const i = argv.findIndex((a) => a === "--root-dir" || a.startsWith("--root-dir="));
      const rootDir = i < 0 ? "" : argv[i].includes("=") ? argv[i].split("=")[1] : argv[i + 1];
      found.push({ pid, rootDir: rootDir ?? "" });
    } catch {
      // process gone
    }
  }
  return found;
}

/**
 * Running kubelets of real nodes: those with the default root dir /var/lib/kubelet. Ours would
 * wipe their device-plugin sockets.
 */
async function foreignKubelets(): Promise<number[]> {
  return (await kubelets()).filter((k) =>
    ["", "/var/lib/kubelet"].includes(k.rootDir.replace(/\/+$/, ""))
  )
    .map((k) => k.pid);
}

// ------------------------------------------------------------------------------------------------
// Cgroups

/** Cgroup hierarchies: each v1 controller dir (and the named/unified ones), or the v2 root. */
async function cgroupRoots(): Promise<string[]> {
  if (await exists("/sys/fs/cgroup/cgroup.controllers")) return ["/sys/fs/cgroup"];
  const roots: string[] = [];
  for await (const e of Deno.readDir("/sys/fs/cgroup")) {
    const root = `/sys/fs/cgroup/${e.name}`;
    if (e.isDirectory && await exists(`${root}/cgroup.procs`)) roots.push(root);
  }
  return roots;
}

/** Creates the kubelet's cgroup root `/<name>` in every hierarchy (it insists on each). */
async function createCgroupRoot(name: string): Promise<void> {
  for (const root of await cgroupRoots()) {
    await Deno.mkdir(`${root}/${name}`, { recursive: true });
    if (root !== "/sys/fs/cgroup") continue;
    // cgroup v2: hand the controllers of the root on to the kubelet's cgroups.
    const controllers = (await Deno.readTextFile(`${root}/cgroup.subtree_control`)).trim();
    const enable = controllers.split(/\s+/).filter(Boolean).map((c) => `+${c}`).join(" ");
    if (enable) await Deno.writeTextFile(`${root}/${name}/cgroup.subtree_control`, enable);
  }
}

async function cgroupRootLeft(name: string): Promise<boolean> {
  for (const root of await cgroupRoots()) if (await exists(`${root}/${name}`)) return true;
  return false;
}

// ------------------------------------------------------------------------------------------------
// Processes

/** A daemon of the cluster, its output in `<dir>/<name>.log`, its pid in `<dir>/<name>.pid`. */
interface Daemon {
  name: string;
  log: string;
  pid: number;
  exited: boolean;
  status: Promise<Deno.CommandStatus>;
}

async function spawnDaemon(dir: string, name: string, argv: string[]): Promise<Daemon> {
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

/** Thrown by waits of a startup that already failed elsewhere. */
class StartupAborted extends Error {}

/**
 * Polls `ready` every 100 ms until it is true; throws (with the daemon's log tail) when the
 * daemon exits, after `ms`, or when `aborted()` says startup failed elsewhere.
 */
async function waitReady(
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

/** A request to the API server: status code and body. */
type Api = (method: string, path: string, body?: string) => Promise<ApiResponse>;

interface ApiResponse {
  /** HTTP status code (0 when the response was not HTTP). */
  status: number;
  body: string;
}

/**
 * One HTTPS request to the API server on 127.0.0.1:`port` with a bearer token. HTTP/1.0 over
 * Deno.connectTls, so that the answer is plain (no chunks) and no proxy of the environment
 * gets in the way (Deno's fetch does not bypass loopback addresses).
 */
async function apiRequest(
  to: { port: number; caCert: string; token: string },
  method: string,
  path: string,
  body?: string,
): Promise<ApiResponse> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: to.port,
    caCerts: [to.caCert],
  });
  try {
    const payload = new TextEncoder().encode(body ?? "");
    const head = [
      `${method} ${path} HTTP/1.0`,
      `Host: 127.0.0.1:${to.port}`,
      `Authorization: Bearer ${to.token}`,
      "Accept: application/json",
      ...(body === undefined ? [] : ["Content-Type: application/json"]),
      `Content-Length: ${payload.length}`,
      "",
      "",
    ].join("\r\n");
    const data = new Uint8Array([...new TextEncoder().encode(head), ...payload]);
    for (let n = 0; n < data.length;) n += await conn.write(data.subarray(n));
    const text = await new Response(conn.readable).text(); // the server closes: HTTP/1.0
    const split = text.indexOf("\r\n\r\n");
    return {
      status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0),
      body: split < 0 ? "" : text.slice(split + 4),
    };
  } finally {
    try {
      conn.close();
    } catch {
      // closed with its readable
    }
  }
}

/** True once something accepts TCP connections on 127.0.0.1:`port`. */
async function listening(port: number): Promise<boolean> {
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
async function teardownDir(dir: string, containerd: PrivateContainerd | null): Promise<void> {
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
function reapStale(): Promise<void> {
  return reapStaleDirs(DIR_PREFIX, "etcd.pid", (dir) => teardownDir(dir, null));
}

// ------------------------------------------------------------------------------------------------
// The cluster

/** Pod status fields the waits look at. */
interface PodStatus {
  phase?: string;
  containerStatuses?: {
    name: string;
    ready: boolean;
    state?: { waiting?: { reason?: string; message?: string } };
  }[];
}

/** Waiting reasons after which a pod does not become ready without a change. */
const HOPELESS = ["ErrImageNeverPull", "InvalidImageName", "CrashLoopBackOff"];

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
    const config = {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      address: "127.0.0.1",
      port: kubeletPort,
      readOnlyPort: 0,
      healthzPort: 0,
      tlsCertFile: at("kubelet.crt"),
      tlsPrivateKeyFile: at("kubelet.key"),
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: false },
        x509: { clientCAFile: caFile },
      },
      authorization: { mode: "AlwaysAllow" },
      cgroupDriver: "cgroupfs",
      cgroupRoot: `/${name}`,
      cgroupsPerQOS: true,
      failSwapOn: false,
      containerRuntimeEndpoint: `unix://${c.address}`,
      imageServiceEndpoint: `unix://${c.address}`,
      podLogsDir: at("pod-logs"),
      volumePluginDir: at("volume-plugins"),
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

  const applyPod = async (pod: Record<string, unknown>, namespace?: string) => {
    const p = structuredClone(pod) as {
      apiVersion?: string;
      kind?: string;
      metadata?: { name?: string; namespace?: string };
      spec?: { nodeName?: string; hostNetwork?: boolean };
    };
    const podName = p.metadata?.name;
    if (!podName) throw new Error("applyPod: metadata.name missing");
    const ns = namespace ?? p.metadata?.namespace ?? "default";
    p.apiVersion ??= "v1";
    p.kind ??= "Pod";
    p.metadata = { ...p.metadata, namespace: ns };
    p.spec = { nodeName: NODE_NAME, hostNetwork: true, ...p.spec };
    await kubectl(["apply", "-f", "-"], { stdin: JSON.stringify(p) });
    const path = `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(podName)}`;
    const deadline = Date.now() + 60_000;
    let why = "";
    while (true) {
      const r = await api("GET", path);
      const obj = r.status === 200 ? JSON.parse(r.body) as Record<string, unknown> : null;
      const status = (obj?.status ?? {}) as PodStatus;
      const containers = status.containerStatuses ?? [];
      const ready = containers.length > 0 && containers.every((c) => c.ready);
      if (obj && status.phase === "Running" && ready) return obj;
      const hopeless = containers.find((c) => HOPELESS.includes(c.state?.waiting?.reason ?? ""));
      if (status.phase === "Failed" || status.phase === "Succeeded") why = `phase ${status.phase}`;
      else if (hopeless) why = `container ${hopeless.name}: ${hopeless.state?.waiting?.reason}`;
      else if (Date.now() > deadline) why = `not running and ready within 60s`;
      if (why) break;
      await sleep(200);
    }
    const describe = await kubectl(["describe", "pod", "-n", ns, podName], { check: false });
    throw new Error(`pod ${ns}/${podName}: ${why}\n${describe.stdout}${describe.stderr}`);
  };

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
    applyPod,
    createNamespace,
    killKubelet,
    startKubelet,
    stop,
  };
}

/** Creates ClusterRole {@link LIMITED_ROLE} and binds it to group {@link LIMITED_GROUP}. */
async function createLimitedRbac(api: Api): Promise<void> {
  const group = "rbac.authorization.k8s.io";
  const role = {
    apiVersion: `${group}/v1`,
    kind: "ClusterRole",
    metadata: { name: LIMITED_ROLE },
    rules: [
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
      { apiGroups: [""], resources: ["pods/attach"], verbs: ["get", "create"] },
    ],
  };
  const binding = {
    apiVersion: `${group}/v1`,
    kind: "ClusterRoleBinding",
    metadata: { name: LIMITED_ROLE },
    subjects: [{ kind: "Group", apiGroup: group, name: LIMITED_GROUP }],
    roleRef: { apiGroup: group, kind: "ClusterRole", name: LIMITED_ROLE },
  };
  for (const [kind, obj] of [["clusterroles", role], ["clusterrolebindings", binding]] as const) {
    const r = await api("POST", `/apis/${group}/v1/${kind}`, JSON.stringify(obj));
    if (r.status !== 201) {
      throw new Error(`creating ${kind}/${LIMITED_ROLE}: ${r.status} ${r.body}`);
    }
  }
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
