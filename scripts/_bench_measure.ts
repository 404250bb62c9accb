/**
 * The measuring part of `deno task bench`, shared by its Docker and containerd sections: timing
 * one command, the alternating pairs with their start-up baselines, and the report (table,
 * median ratio, engine-work ratio).
 *
 * @module
 */

/** Stop measuring a section after this long, so each stays under ~3 minutes. */
export const BUDGET_MS = 150_000;
/** Untimed rounds before the measured pairs. */
export const WARMUPS = 2;
const STEP_TIMEOUT_MS = 30_000;
const ROOT = new URL("../", import.meta.url).pathname;

/** One command to time. */
export interface Cmd {
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

/** The bench's sections, in the order they run. */
export const SECTIONS = ["docker", "containerd", "k8s"] as const;
export type SectionName = typeof SECTIONS[number];

/**
 * Parses `[--runs N] [SECTION...]` (runs default 15, 1..200; sections default all); returns an
 * error text when bad.
 */
export function parseArgs(
  args: string[],
): { runs: number; sections: SectionName[] } | string {
  let runs = 15;
  const sections: SectionName[] = [];
  const usage = `(usage: deno task bench [--runs N] [${SECTIONS.join("|")}...])`;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if ((SECTIONS as readonly string[]).includes(a)) {
      sections.push(a as SectionName);
      continue;
    }
    const v = a === "--runs" ? args[++i] : a.startsWith("--runs=") ? a.slice(7) : undefined;
    if (v === undefined) return `unknown argument: ${a} ${usage}`;
    runs = Number(v);
    if (!Number.isInteger(runs) || runs < 1 || runs > 200) return `--runs wants 1..200, got ${v}`;
  }
  return { runs, sections: sections.length > 0 ? sections : [...SECTIONS] };
}

/** Aborted on Ctrl-C (SIGINT), SIGTERM or SIGHUP; bench.ts wires the signals. */
export const abort = new AbortController();

/** Ctrl-C (or SIGTERM) stopped the run. */
export class Interrupted extends Error {}

/** Throws {@link Interrupted} once the run was interrupted. */
export function checkAborted(): void {
  if (abort.signal.aborted) throw new Interrupted();
}

/** Runs `argv` with `env` alone, no input and its output thrown away; stderr is kept. */
function runQuiet(argv: string[], env: Record<string, string>, timeoutMs: number) {
  const [program, ...args] = argv;
  return new Deno.Command(program, {
    args,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]),
  }).output();
}

/** Runs `cmd` once and returns its wall time in ms; throws with its stderr when it fails. */
export async function timeOnce(cmd: Cmd): Promise<number> {
  const start = performance.now();
  const out = await runQuiet(cmd.argv, cmd.env, STEP_TIMEOUT_MS);
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

/** The dbg and no-op commands, as argv prefixes; `how` says which kind they are. */
export interface DenoCommands {
  dbg: string[];
  noop: string[];
  how: string;
}

/** The commands of a section. */
export interface Section {
  /** dbg. */
  A: Cmd;
  /** The closest raw engine command. */
  B: Cmd;
  /** A's bare start-up (a no-op Deno script). */
  N: Cmd;
  /** B's bare start-up (e.g. `docker version`). */
  V: Cmd;
  /** Other peers timed in the same rounds (cdebug). */
  more?: Cmd[];
}

/**
 * Times the section's commands alternately (order flipped every round so drift cancels out):
 * {@link WARMUPS} untimed rounds, then up to `runs` measured ones, stopping at {@link BUDGET_MS}
 * after `t0`. `fresh` is called (and awaited, untimed) before each command, so commands that
 * need a new argv every time (e.g. a unique container id) can get one. Prints the table and both
 * ratios, and returns each command's median (ms).
 */
export async function measure(
  s: Section,
  runs: number,
  t0: number,
  fresh: (cmd: Cmd) => Cmd | Promise<Cmd> = (cmd) => cmd,
): Promise<(cmd: Cmd) => number> {
  const { A, B, N, V } = s;
  const cmds = [A, B, ...(s.more ?? []), N, V];
  const samples = new Map<Cmd, number[]>(cmds.map((c) => [c, []]));
  let done = 0;
  for (let i = 0; i < WARMUPS + runs; i++) {
    if (performance.now() - t0 > BUDGET_MS) {
      console.log(`(time budget reached: stopped after ${done} of ${runs} pairs)`);
      break;
    }
    for (const cmd of i % 2 ? [...cmds].reverse() : cmds) {
      const ms = await timeOnce(await fresh(cmd));
      if (i >= WARMUPS) samples.get(cmd)!.push(ms);
    }
    if (i >= WARMUPS) done++;
    await Deno.stdout.write(new TextEncoder().encode(i < WARMUPS ? "w" : "."));
  }
  console.log("");
  if (done === 0) throw new Error("no pairs measured");
  console.log(`\n${done} rounds, alternating, after ${WARMUPS} warm-ups:`);
  console.log(table([...samples].map(([c, xs]) => [c.label, xs])));
  const m = (c: Cmd) => stats(samples.get(c)!).median;
  const engine = (m(A) - m(N)) / (m(B) - m(V));
  console.log(`\nmedian ratio A/B: ${(m(A) / m(B)).toFixed(2)}`);
  console.log(
    `engine-work ratio (A - ${N.label}) / (B - ${V.label}): ${
      m(B) > m(V) ? engine.toFixed(2) : `n/a (B is not slower than ${V.label})`
    }  [${(m(A) - m(N)).toFixed(0)} ms / ${(m(B) - m(V)).toFixed(0)} ms]`,
  );
  return m;
}

/** One line of the report's closing table: dbg next to a peer, and the goal for their ratio. */
export interface SummaryRow {
  work: string;
  dbg: number;
  /** The peer's number; none when the goal is `max`. */
  peer?: number;
  /** How the two numbers read (ms, MiB, s of CPU). */
  unit: string;
  /** The ratio dbg/peer must stay at or below this (below it with `strict`). */
  goal?: number;
  strict?: boolean;
  /** dbg's number must stay at or below this. */
  max?: number;
}

/** The rows that the sections add, printed together at the end (bench.ts). */
export const summary: SummaryRow[] = [];

/** The closing table: every ratio with its goal, and whether it is met. */
export function summaryTable(rows: SummaryRow[]): string {
  const w = Math.max(4, ...rows.map((r) => r.work.length));
  const num = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2)).padStart(8);
  const head = `${"work".padEnd(w)}  ${"dbg".padStart(8)}  ${
    "peer".padStart(8)
  }  unit  ratio  goal`;
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  const lines = rows.map((r) => {
    const ratio = r.peer ? r.dbg / r.peer : undefined;
    const goal = r.max !== undefined
      ? `${r.dbg.toFixed(0)} <= ${r.max} ${r.unit} ${verdict(r.dbg <= r.max)}`
      : r.goal === undefined || ratio === undefined
      ? ""
      : `${r.strict ? "<" : "<="} ${r.goal.toFixed(2)} ${
        verdict(r.strict ? ratio < r.goal : ratio <= r.goal)
      }`;
    const peer = r.peer === undefined ? "".padStart(8) : num(r.peer);
    const rt = ratio === undefined ? "" : ratio.toFixed(2);
    return `${r.work.padEnd(w)}  ${num(r.dbg)}  ${peer}  ${r.unit.padEnd(5)}  ${
      rt.padStart(5)
    }  ${goal}`;
  });
  return [head, ...lines].join("\n");
}

/** What one run of a streaming command cost: peak RSS (MiB), CPU (s) and wall time (s). */
export interface Cost {
  rssMiB: number;
  cpuS: number;
  wallS: number;
  /** MiB of output that reached the file (kubectl debug loses what is in flight at the end). */
  mib: number;
}

/**
 * The streams' size, and how many times each streaming command runs (medians of 3 moved CPU
 * ratios by a tenth between runs).
 */
const STREAM_MIB = 256;
const STREAM_ROUNDS = 5;

/** The command that streams {@link STREAM_MIB} MiB through stdout; says so on the way. */
export function streamCommand(): string[] {
  const cmd = ["head", "-c", String(STREAM_MIB << 20), "/dev/zero"];
  console.log(`\nstreaming ${STREAM_MIB} MiB through stdout (${cmd.join(" ")}):`);
  return cmd;
}

/** GNU time, which reports a child's peak RSS and CPU. */
export const GNU_TIME = "/usr/bin/time";

/**
 * Where the streams go: a file in memory (tmpfs), so that what arrived can be counted, and the
 * writes cost the same for every peer (a regular file takes them at once, as /dev/null would).
 */
const STREAM_OUT = "/dev/shm/dbg-bench-stream";

/** Runs `cmd` once under GNU time, its output into a file, and returns what it cost. */
export async function costOnce(cmd: Cmd): Promise<Cost> {
  const out = await runQuiet(
    [
      GNU_TIME,
      "-f",
      "dbg-bench %M %U %S %e",
      "sh",
      "-c",
      'exec "$@" >"$0"',
      STREAM_OUT,
      ...cmd.argv,
    ],
    cmd.env,
    120_000,
  );
  checkAborted();
  const err = new TextDecoder().decode(out.stderr);
  const m = /dbg-bench (\d+) ([\d.]+) ([\d.]+) ([\d.]+)/.exec(err);
  if (!out.success || !m) throw new Error(`${cmd.label} failed: ${cmd.argv.join(" ")}\n${err}`);
  const mib = Deno.statSync(STREAM_OUT).size / (1 << 20);
  Deno.removeSync(STREAM_OUT);
  return {
    rssMiB: Number(m[1]) / 1024,
    cpuS: Number(m[2]) + Number(m[3]),
    wallS: Number(m[4]),
    mib,
  };
}

/**
 * Runs each streaming command {@link STREAM_ROUNDS} times, alternately, and prints and returns
 * the median cost of each. A command that delivered less than the stream has its CPU and wall
 * time scaled up to the whole stream (throughput is {@link STREAM_MIB} / wall), and is named.
 */
export async function measureCost(
  cmds: Cmd[],
  fresh: (cmd: Cmd) => Cmd = (cmd) => cmd,
): Promise<Map<Cmd, Cost>> {
  const costs = new Map<Cmd, Cost[]>(cmds.map((c) => [c, []]));
  for (let i = 0; i < STREAM_ROUNDS; i++) {
    for (const cmd of i % 2 ? [...cmds].reverse() : cmds) {
      costs.get(cmd)!.push(await costOnce(fresh(cmd)));
    }
    await Deno.stdout.write(new TextEncoder().encode("."));
  }
  console.log("");
  const med = (xs: number[]) => stats(xs).median;
  const out = new Map<Cmd, Cost>();
  const w = Math.max(...cmds.map((c) => c.label.length));
  console.log(`${"".padEnd(w)}  peak RSS   CPU (user+sys)   MiB/s  (medians of ${STREAM_ROUNDS})`);
  const short: string[] = [];
  for (const [cmd, xs] of costs) {
    const whole = (x: Cost) => STREAM_MIB / Math.max(x.mib, 1);
    const c = {
      rssMiB: med(xs.map((x) => x.rssMiB)),
      cpuS: med(xs.map((x) => x.cpuS * whole(x))),
      wallS: med(xs.map((x) => x.wallS * whole(x))),
      mib: med(xs.map((x) => x.mib)),
    };
    out.set(cmd, c);
    if (xs.some((x) => x.mib < STREAM_MIB)) {
      short.push(`${cmd.label}: ${xs.map((x) => x.mib.toFixed(0)).join(", ")} MiB`);
    }
    console.log(
      `${cmd.label.padEnd(w)}  ${c.rssMiB.toFixed(0).padStart(5)} MiB  ${
        c.cpuS.toFixed(2).padStart(9)
      } s   ${(STREAM_MIB / c.wallS).toFixed(0).padStart(7)}`,
    );
  }
  if (short.length) {
    console.log(
      `delivered less than ${STREAM_MIB} MiB (CPU and time scaled to it): ${short.join("; ")}`,
    );
  }
  return out;
}

/** The streaming rows: CPU next to the raw engine command, peak RSS next to cdebug. */
export function streamRows(runtime: string, a: Cost, b: Cost, raw: string, cdebug?: Cost): void {
  summary.push({
    work: `${runtime} stream CPU vs ${raw}`,
    dbg: a.cpuS,
    peer: b.cpuS,
    unit: "s",
    goal: 1.5,
  });
  summary.push({
    work: `${runtime} stream MiB/s vs ${raw}`,
    dbg: STREAM_MIB / a.wallS,
    peer: STREAM_MIB / b.wallS,
    unit: "MiB/s",
  });
  if (cdebug) {
    summary.push({
      work: `${runtime} stream peak RSS vs cdebug`,
      dbg: a.rssMiB,
      peer: cdebug.rssMiB,
      unit: "MiB",
      goal: 1.5,
    });
  }
  summary.push({
    work: `${runtime} stream peak RSS vs ${raw}`,
    dbg: a.rssMiB,
    peer: b.rssMiB,
    unit: "MiB",
  });
}
