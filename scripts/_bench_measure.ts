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

/** Runs `cmd` once and returns its wall time in ms; throws with its stderr when it fails. */
export async function timeOnce(cmd: Cmd): Promise<number> {
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

/** The four commands of a section. */
export interface Section {
  /** dbg. */
  A: Cmd;
  /** The closest raw engine command. */
  B: Cmd;
  /** A's bare start-up (a no-op Deno script). */
  N: Cmd;
  /** B's bare start-up (e.g. `docker version`). */
  V: Cmd;
}

/**
 * Times A, B, N and V alternately (order flipped every round so drift cancels out): {@link
 * WARMUPS} untimed rounds, then up to `runs` measured ones, stopping at {@link BUDGET_MS} after
 * `t0`. `fresh` is called before each command, so commands that need a new argv every time
 * (e.g. a unique container id) can get one. Prints the table and both ratios.
 */
export async function measure(
  s: Section,
  runs: number,
  t0: number,
  fresh: (cmd: Cmd) => Cmd = (cmd) => cmd,
): Promise<void> {
  const { A, B, N, V } = s;
  const samples = new Map<Cmd, number[]>([[A, []], [B, []], [N, []], [V, []]]);
  let done = 0;
  for (let i = 0; i < WARMUPS + runs; i++) {
    if (performance.now() - t0 > BUDGET_MS) {
      console.log(`(time budget reached: stopped after ${done} of ${runs} pairs)`);
      break;
    }
    const order = i % 2 ? [B, A, V, N] : [A, B, N, V];
    for (const cmd of order) {
      const ms = await timeOnce(fresh(cmd));
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
    `engine-work ratio (A - ${N.label}) / (B - ${V.label}): ${
      m(B) > m(V) ? engine.toFixed(2) : `n/a (B is not slower than ${V.label})`
    }  [${(m(A) - m(N)).toFixed(0)} ms / ${(m(B) - m(V)).toFixed(0)} ms]`,
  );
}
