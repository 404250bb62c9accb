/**
 * The binaries of the private cluster (cluster.ts): etcd, kube-apiserver, kubelet and kubectl,
 * built with Go from the modules in scripts/cluster/ (versions from its go.mod files) and cached
 * in `${XDG_CACHE_HOME:-$HOME/.cache}/dbg-tests/cluster/`.
 *
 * @module
 */

import { which } from "../../scripts/_images.ts";
import { exists, processRunning, sh } from "./dockerd.ts";
import { sha256Hex, tailOf } from "./util.ts";

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

export async function binaryPlan(): Promise<BinaryPlan> {
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

export async function builtAlready(plan: BinaryPlan): Promise<boolean> {
  const stamp = await Deno.readTextFile(`${plan.binDir}/${STAMP}`).catch(() => "");
  return stamp.trim() === plan.stamp;
}

/** The Go toolchain: `go` on PATH, else /usr/local/go/bin/go; null when neither exists. */
export async function findGo(): Promise<string | null> {
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
