/**
 * `deno task bench [--runs N]`: how long `dbg docker app -- true` takes next to the closest plain
 * docker command, `docker run --rm --pid container:app --net container:app busybox:musl true`.
 *
 * It runs against a private dockerd (never the system one) with the local test images, runs the
 * two commands alternately (2 warm-ups, then N pairs, order flipped every pair so drift cancels
 * out), and also times each side's bare start-up (a no-op Deno script; `docker version`) so the
 * report can give the ratio of the engine work alone. Stops the dockerd on every path.
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

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url).pathname;
const WARMUPS = 2;
/** Stop measuring after this long, so the whole run stays under ~3 minutes. */
const BUDGET_MS = 150_000;
const STEP_TIMEOUT_MS = 30_000;

/** One command to time. */
interface Cmd {
  label: string;
  argv: string[];
  env: Record<string, string>;
}

/** Median, 90th percentile and minimum of some samples (ms). */
export interface Stats {
  /** Middle sample (mean of the two middle ones for an even count). */
  median: number;
  /** Nearest-rank 90th percentile. */
  p90: number;
  /** Fastest sample. */
  min: number;
}

/** Summarises samples in milliseconds; the report's columns. */
export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, p90: s[Math.ceil(0.9 * s.length) - 1], min: s[0] };
}

/** Parses `--runs N` / `--runs=N` (default 15, 1..200); returns an error text when bad. */
export function parseRuns(args: string[]): number | string {
  let runs = 15;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const v = a === "--runs" ? args[++i] : a.startsWith("--runs=") ? a.slice(7) : undefined;
    if (v === undefined) return `unknown argument: ${a} (usage: deno task bench [--runs N])`;
    runs = Number(v);
    if (!Number.isInteger(runs) || runs < 1 || runs > 200) return `--runs wants 1..200, got ${v}`;
  }
  return runs;
}

const abort = new AbortController();

/** Ctrl-C (or SIGTERM) stopped the run. */
class Interrupted extends Error {}

/** Runs `cmd` once and returns its wall time in ms; throws with its stderr when it fails. */
async function timeOnce(cmd: Cmd): Promise<number> {
  const [program, ...args] = cmd.argv;
  const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(STEP_TIMEOUT_MS)]);
  const start = performance.now();
  const out = await new Deno.Command(program, {
    args,
    cwd: ROOT,
    env: cmd.env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    signal,
  }).output();
  const ms = performance.now() - start;
  // A terminal's Ctrl-C can reach the child before our listener has run.
  if (abort.signal.aborted || out.signal === "SIGINT") throw new Interrupted();
  if (!out.success) {
    const why = out.signal ? `killed by ${out.signal}` : `exit ${out.code}`;
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${cmd.label} failed (${why}): ${cmd.argv.join(" ")}\n${err}`);
  }
  return ms;
}

/**
 * The dbg and no-op commands: compiled binaries when `deno compile` can work offline (it needs
 * denort, which it would otherwise download), else `deno run --cached-only` on a warm cache.
 */
async function denoCommands(tmp: string): Promise<{ dbg: string[]; noop: string[]; how: string }> {
  const deno = Deno.execPath();
  const noopFile = `${tmp}/noop.ts`;
  await Deno.writeTextFile(noopFile, "// no-op: measures Deno's own start-up\n");
  const viaRun = {
    dbg: [deno, "run", "-A", "--cached-only", MAIN],
    noop: [deno, "run", "-A", "--cached-only", noopFile],
  };
  const info = JSON.parse((await sh([deno, "info", "--json"])).stdout) as { denoDir: string };
  const zip = `${info.denoDir}/dl/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
  const denort = Deno.env.get("DENORT_BIN") ?? (await exists(zip) ? zip : null);
  if (denort === null) {
    const why = `deno compile unavailable: it would download denort from dl.deno.land (${zip} ` +
      "is not cached, DENORT_BIN is unset)";
    return {
      ...viaRun,
      how: `${why}\n  dbg runs as: deno run -A --cached-only main.ts (warm cache)`,
    };
  }
  const compile = async (out: string, entry: string, extra: string[]) => {
    const argv = [deno, "compile", "-A", "--cached-only", "--no-check", ...extra, "-o", out, entry];
    await sh(argv, { cwd: ROOT, env: cleanEnv({ NO_COLOR: "1" }) });
    return out;
  };
  try {
    const dbg = await compile(`${tmp}/dbg`, MAIN, ["--include", "runtimes/docker.ts"]);
    const noop = await compile(`${tmp}/noop`, noopFile, []);
    return { dbg: [dbg], noop: [noop], how: `deno compile works (denort: ${denort})` };
  } catch (e) {
    const lines = (e instanceof Error ? e.message : String(e)).split("\n");
    const why = lines.find((l) => l.startsWith("error:")) ?? lines[0];
    return { ...viaRun, how: `deno compile failed (${why}); using deno run --cached-only` };
  }
}

const fmt = (ms: number) => ms.toFixed(0).padStart(7);

function table(rows: Array<[string, number[]]>): string {
  const w = Math.max(...rows.map(([l]) => l.length));
  const head = `${"".padEnd(w)}  ${"median".padStart(7)}  ${"p90".padStart(7)}  ${
    "min".padStart(7)
  }  (ms)`;
  const lines = rows.map(([label, xs]) => {
    const s = stats(xs);
    return `${label.padEnd(w)}  ${fmt(s.median)}  ${fmt(s.p90)}  ${fmt(s.min)}`;
  });
  return [head, ...lines].join("\n");
}

async function machine(d: PrivateDockerd, dbg: string[]): Promise<string> {
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1];
  const ver = await d.docker(["version", "--format", "{{.Client.Version}} / {{.Server.Version}}"]);
  const driver = await d.docker(["info", "--format", "{{.Driver}}"]);
  const v = await sh([...dbg, "--version"], { check: false, env: cleanEnv({ NO_COLOR: "1" }) });
  return [
    `machine: ${navigator.hardwareConcurrency} CPUs (nproc), ${
      cpu ?? "?"
    }, Linux ${Deno.osRelease()}`,
    `storage driver: ${driver.stdout.trim()}; docker client / daemon: ${ver.stdout.trim()}`,
    `deno ${Deno.version.deno} (v8 ${Deno.version.v8}, ts ${Deno.version.typescript}); dbg ${
      v.stdout.trim() || "?"
    }`,
  ].join("\n");
}

async function bench(d: PrivateDockerd, runs: number, tmp: string): Promise<void> {
  const t0 = performance.now();
  console.log("bench: loading the test images and starting the target app");
  await loadTestImages(d);
  await runTarget(d, { name: "app" });
  const { dbg, noop, how } = await denoCommands(tmp);
  console.log(how);
  const env = cleanEnv({ DOCKER_CONFIG: `${d.dir}/config`, NO_COLOR: "1" });
  const A: Cmd = {
    label: "A dbg",
    argv: [...dbg, "docker", "-H", d.host, "-q", "app", "--", "true"],
    env,
  };
  const bArgs = ["run", "--rm", "--pid", "container:app", "--net", "container:app"];
  const B: Cmd = {
    label: "B docker run",
    argv: [DOCKER, "-H", d.host, ...bArgs, BUSYBOX_IMAGE, "true"],
    env,
  };
  const N: Cmd = { label: "deno no-op", argv: noop, env };
  const V: Cmd = { label: "docker version", argv: [DOCKER, "-H", d.host, "version"], env };
  console.log(await machine(d, dbg));
  console.log(`A: ${A.argv.join(" ")}\nB: ${B.argv.join(" ")}`);

  const samples = new Map<Cmd, number[]>([[A, []], [B, []], [N, []], [V, []]]);
  let done = 0;
  for (let i = 0; i < WARMUPS + runs; i++) {
    if (performance.now() - t0 > BUDGET_MS) {
      console.log(`(time budget reached: stopped after ${done} of ${runs} pairs)`);
      break;
    }
    const order = i % 2 ? [B, A, V, N] : [A, B, N, V];
    for (const cmd of order) {
      const ms = await timeOnce(cmd);
      if (i >= WARMUPS) samples.get(cmd)!.push(ms);
    }
    if (i >= WARMUPS) done++;
    await Deno.stdout.write(new TextEncoder().encode(i < WARMUPS ? "w" : "."));
  }
  console.log("");
  if (done === 0) throw new Error("no pairs measured");
  console.log(`\n${done} pairs, alternating, after ${WARMUPS} warm-ups:`);
  console.log(table([...samples].map(([c, xs]) => [c.label, xs])));
  const m = (c: Cmd) => stats(samples.get(c)!).median;
  const engine = (m(A) - m(N)) / (m(B) - m(V));
  console.log(`\nmedian ratio A/B: ${(m(A) / m(B)).toFixed(2)}`);
  console.log(
    `engine-work ratio (A - deno no-op) / (B - docker version): ${
      m(B) > m(V) ? engine.toFixed(2) : "n/a (B is not slower than docker version)"
    }  [${(m(A) - m(N)).toFixed(0)} ms / ${(m(B) - m(V)).toFixed(0)} ms]`,
  );
}

async function main(): Promise<number> {
  const runs = parseRuns(Deno.args);
  if (typeof runs === "string") {
    console.error(`bench: ${runs}`);
    return 1;
  }
  if (Deno.uid() !== 0) {
    console.error("bench: needs root: it starts a private dockerd (never the system one)");
    return 1;
  }
  for (const bin of [DOCKERD, DOCKER]) {
    if (!await exists(bin)) {
      console.error(`bench: ${bin} is missing (apt-get install docker.io)`);
      return 1;
    }
  }
  const onSignal = () => abort.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const sig of signals) Deno.addSignalListener(sig, onSignal);
  const tmp = await Deno.makeTempDir({ prefix: "dbg-bench-" });
  let d: PrivateDockerd | null = null;
  try {
    console.log("bench: starting a private dockerd");
    d = await startDockerd();
    if (abort.signal.aborted) throw new Interrupted();
    await bench(d, runs, tmp);
    return 0;
  } catch (e) {
    if (abort.signal.aborted || e instanceof Interrupted) {
      console.error("\nbench: interrupted");
      return 130;
    }
    console.error(`bench: ${e instanceof Error ? e.message : e}`);
    return 1;
  } finally {
    console.log("bench: stopping the private dockerd");
    await d?.stop();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    for (const sig of signals) Deno.removeSignalListener(sig, onSignal);
  }
}

if (import.meta.main) Deno.exit(await main());
