/**
 * `deno task bench [--runs N] [SECTION...]`: dbg next to the raw engine commands and its peers,
 * measured alternately in one run, each section on a private engine (never the system one)
 * with the local test images; nothing is downloaded. It ends with one table of every ratio
 * next to its goal.
 *
 * - start-up: `dbg --version` next to an empty Deno script.
 * - docker: `dbg docker app -- true` next to `docker run --rm --pid container:app --net
 *   container:app busybox:musl true`, and next to `cdebug exec --rm` when CDEBUG names its
 *   binary (it builds with Go from github.com/iximiuz/cdebug); then 256 MiB through stdout:
 *   peak RSS, CPU and throughput of each.
 * - containerd: `dbg containerd -n default app -- true` next to `ctr run --rm --with-ns …`
 *   (_bench_containerd.ts), and the stream.
 * - k8s: `dbg k8s POD -- true` next to `kubectl debug --attach`, on fresh pods and on a pod
 *   that holds ten ended dbg containers; dbg's time from start to its PATCH; the stream
 *   (_bench_k8s.ts).
 *
 * The timed commands run alternately (2 warm-ups, then N rounds, order flipped every round so
 * drift cancels out), with each side's bare start-up (a no-op Deno script; `docker version`
 * or `ctr version`) so the report can give the ratio of the engine work alone. Stops each
 * daemon on every path, Ctrl-C included.
 *
 * @module
 */

import {
  cleanEnv,
  DOCKER,
  DOCKERD,
  exists,
  type PrivateDockerd,
  sh,
  startDockerd,
} from "../tests/helpers/dockerd.ts";
import { BUSYBOX_IMAGE, loadTestImages, runTarget } from "../tests/helpers/images.ts";
import { CONTAINERD, CTR, RUNC, SHIM, startContainerd } from "../tests/helpers/containerd.ts";
import {
  abort,
  checkAborted,
  type Cmd,
  type DenoCommands,
  Interrupted,
  measure,
  measureCost,
  parseArgs,
  stats,
  streamCommand,
  streamRows,
  summary,
  summaryTable,
  timeOnce,
  WARMUPS,
} from "./_bench_measure.ts";
import { benchContainerd } from "./_bench_containerd.ts";
import { benchK8s } from "./_bench_k8s.ts";
import { startCluster } from "../tests/helpers/cluster.ts";
import { bundle, compileArgs, CONFIG, V8_FLAGS } from "./compile.ts";

const ROOT = new URL("../", import.meta.url).pathname;

export { parseArgs, type Stats, stats } from "./_bench_measure.ts";

/**
 * The dbg and no-op commands: compiled binaries when `deno compile` can work offline (it needs
 * denort, which it would otherwise download), else `deno run --cached-only` on a warm cache of
 * the bundle that the binary is compiled from.
 */
async function denoCommands(tmp: string): Promise<DenoCommands> {
  const deno = Deno.execPath();
  const noopFile = `${tmp}/noop.ts`;
  await Deno.writeTextFile(noopFile, "// no-op: measures Deno's own start-up\n");
  const outdir = `${tmp}/bundle`;
  const main = await bundle(outdir);
  const viaRun = {
    dbg: [deno, "run", "-A", "--cached-only", `--config=${CONFIG}`, V8_FLAGS, main],
    noop: [deno, "run", "-A", "--cached-only", V8_FLAGS, noopFile],
  };
  const info = JSON.parse((await sh([deno, "info", "--json"])).stdout) as { denoDir: string };
  const zip = `${info.denoDir}/dl/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
  const denort = Deno.env.get("DENORT_BIN") ?? (await exists(zip) ? zip : null);
  if (denort === null) {
    const why = `deno compile unavailable: it would download denort from dl.deno.land (${zip} ` +
      "is not cached, DENORT_BIN is unset)";
    return {
      ...viaRun,
      how: `${why}\n  dbg runs as: deno run -A --cached-only ${V8_FLAGS} <its bundle>/main.js ` +
        "(scripts/compile.ts; warm cache)",
    };
  }
  const compile = async (args: string[]) => {
    await sh([deno, ...args], { cwd: ROOT, env: cleanEnv({ NO_COLOR: "1" }) });
  };
  try {
    const offline = ["--cached-only", "--no-check"];
    const dbg = `${tmp}/dbg`;
    const noop = `${tmp}/noop`;
    await compile(compileArgs(undefined, outdir, dbg, offline));
    await compile(["compile", ...offline, V8_FLAGS, "-o", noop, noopFile]);
    return { dbg: [dbg], noop: [noop], how: `deno compile works (denort: ${denort})` };
  } catch (e) {
    const lines = (e instanceof Error ? e.message : String(e)).split("\n");
    const why = lines.find((l) => l.startsWith("error:")) ?? lines[0];
    return { ...viaRun, how: `deno compile failed (${why}); using deno run --cached-only` };
  }
}

/** CPUs, kernel, Deno and dbg versions. */
async function machine(dbg: string[]): Promise<string> {
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1];
  const v = await sh([...dbg, "--version"], { check: false, env: cleanEnv({ NO_COLOR: "1" }) });
  return [
    `machine: ${navigator.hardwareConcurrency} CPUs (nproc), ${
      cpu ?? "?"
    }, Linux ${Deno.osRelease()}`,
    `deno ${Deno.version.deno} (v8 ${Deno.version.v8}, ts ${Deno.version.typescript}); dbg ${
      v.stdout.trim() || "?"
    }`,
  ].join("\n");
}

async function benchDocker(d: PrivateDockerd, runs: number, deno: DenoCommands): Promise<void> {
  const t0 = performance.now();
  console.log("bench: loading the test images and starting the target app");
  await loadTestImages(d);
  await runTarget(d, { name: "app" });
  const env = cleanEnv({ DOCKER_CONFIG: `${d.dir}/config`, NO_COLOR: "1" });
  const cdebug = Deno.env.get("CDEBUG");
  const dbgArgs = [...deno.dbg, "docker", "-H", d.host, "-q", "app", "--"];
  const runArgs = [DOCKER, "-H", d.host, "run", "--rm", "--pid", "container:app"];
  runArgs.push("--net", "container:app", BUSYBOX_IMAGE);
  const cdebugArgs = [cdebug ?? "cdebug", "exec", "--rm", "-q", "--image", BUSYBOX_IMAGE, "app"];
  const cdebugEnv = { ...env, DOCKER_HOST: d.host };
  const A: Cmd = { label: "A dbg", argv: [...dbgArgs, "true"], env };
  const B: Cmd = { label: "B docker run", argv: [...runArgs, "true"], env };
  const C: Cmd = { label: "C cdebug exec", argv: [...cdebugArgs, "true"], env: cdebugEnv };
  const N: Cmd = { label: "deno no-op", argv: deno.noop, env };
  const V: Cmd = { label: "docker version", argv: [DOCKER, "-H", d.host, "version"], env };
  const ver = await d.docker(["version", "--format", "{{.Client.Version}} / {{.Server.Version}}"]);
  const driver = await d.docker(["info", "--format", "{{.Driver}}"]);
  console.log(
    `storage driver: ${driver.stdout.trim()}; docker client / daemon: ${ver.stdout.trim()}`,
  );
  console.log(`A: ${A.argv.join(" ")}\nB: ${B.argv.join(" ")}`);
  if (cdebug) console.log(`C: ${C.argv.join(" ")}`);
  else console.log("C: no cdebug (CDEBUG=/path/to/cdebug adds it)");
  const m = await measure({ A, B, N, V, more: cdebug ? [C] : [] }, runs, t0);
  summary.push({
    work: "docker -- true vs docker run",
    dbg: m(A),
    peer: m(B),
    unit: "ms",
    goal: 1.1,
  });
  if (cdebug) {
    summary.push({
      work: "docker -- true vs cdebug exec",
      dbg: m(A),
      peer: m(C),
      unit: "ms",
      goal: 1,
      strict: true,
    });
  }
  const stream = streamCommand();
  const SA = { ...A, argv: [...dbgArgs, ...stream] };
  const SB = { ...B, argv: [...runArgs, ...stream] };
  const SC = { ...C, argv: [...cdebugArgs, ...stream] };
  const cost = await measureCost(cdebug ? [SA, SB, SC] : [SA, SB]);
  streamRows(
    "docker",
    cost.get(SA)!,
    cost.get(SB)!,
    "docker run",
    cdebug ? cost.get(SC) : undefined,
  );
}

/** `dbg --version` next to an empty Deno script: dbg's own start-up. */
async function benchStartup(runs: number, deno: DenoCommands): Promise<void> {
  const env = cleanEnv({ NO_COLOR: "1" });
  const A: Cmd = { label: "A dbg --version", argv: [...deno.dbg, "--version"], env };
  const N: Cmd = { label: "deno no-op", argv: deno.noop, env };
  const samples: [number[], number[]] = [[], []];
  for (let i = 0; i < WARMUPS + runs; i++) {
    const a = await timeOnce(A);
    const n = await timeOnce(N);
    if (i >= WARMUPS) samples[0].push(a), samples[1].push(n);
  }
  const [a, n] = samples.map((xs) => stats(xs).median);
  console.log(
    `dbg --version ${a.toFixed(0)} ms, deno no-op ${n.toFixed(0)} ms (medians of ${runs})`,
  );
  summary.push({ work: "dbg --version vs deno no-op", dbg: a, peer: n, unit: "ms" });
}

/** Runs `section` with a daemon from `start`, stopped afterwards on every path. */
async function withDaemon<D extends { stop(): Promise<void> }>(
  name: string,
  start: () => Promise<D>,
  section: (d: D) => Promise<void>,
): Promise<void> {
  console.log(`bench: starting a private ${name}`);
  let d: D | null = null;
  try {
    d = await start();
    checkAborted();
    await section(d);
  } finally {
    console.log(`bench: stopping the private ${name}`);
    await d?.stop();
  }
}

async function main(): Promise<number> {
  const parsed = parseArgs(Deno.args);
  if (typeof parsed === "string") {
    console.error(`bench: ${parsed}`);
    return 1;
  }
  const { runs, sections } = parsed;
  if (Deno.uid() !== 0) {
    console.error(
      "bench: needs root: it starts a private dockerd and containerd (never the system ones)",
    );
    return 1;
  }
  for (const bin of [DOCKERD, DOCKER, CONTAINERD, CTR, SHIM, RUNC]) {
    if (!await exists(bin)) {
      console.error(`bench: ${bin} is missing (apt-get install docker.io)`);
      return 1;
    }
  }
  const onSignal = () => abort.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const sig of signals) Deno.addSignalListener(sig, onSignal);
  const tmp = await Deno.makeTempDir({ prefix: "dbg-bench-" });
  try {
    const deno = await denoCommands(tmp);
    console.log(deno.how);
    console.log(await machine(deno.dbg));
    console.log("\n== start-up ==");
    await benchStartup(runs, deno);
    if (sections.includes("docker")) {
      console.log("\n== docker ==");
      await withDaemon("dockerd", startDockerd, (d) => benchDocker(d, runs, deno));
      checkAborted();
    }
    if (sections.includes("containerd")) {
      console.log("\n== containerd ==");
      await withDaemon("containerd", startContainerd, (c) => benchContainerd(c, runs, deno));
      checkAborted();
    }
    if (sections.includes("k8s")) {
      console.log("\n== k8s ==");
      await withDaemon("Kubernetes cluster", startCluster, (c) => benchK8s(c, runs, deno));
    }
    console.log(`\n== summary (medians, measured alternately in this run) ==\n`);
    console.log(summaryTable(summary));
    return 0;
  } catch (e) {
    if (abort.signal.aborted || e instanceof Interrupted) {
      console.error("\nbench: interrupted");
      return 130;
    }
    console.error(`bench: ${e instanceof Error ? e.message : e}`);
    return 1;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    for (const sig of signals) Deno.removeSignalListener(sig, onSignal);
  }
}

if (import.meta.main) Deno.exit(await main());
