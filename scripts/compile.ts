/**
 * `deno task compile [--target TARGET]...`: dbg as one file per platform, in dist/dbg-TARGET
 * (default: every release target). `deno compile` fetches each target's runtime (denort) from
 * dl.deno.land unless DENORT_BIN names one, so this needs the network once per target.
 *
 * `deno run -A scripts/compile.ts --check` (part of `deno task check`) proves offline that the
 * compile graph (the entry and its includes, as `deno info` resolves them) holds every runtime
 * module under runtimes/ and every npm package that deno.json imports, so that no adapter is
 * missing from the binary, and that dbg's launchers in the checkout pass the binary's V8 flags.
 *
 * @module
 */

import { MODULES } from "../runtimes/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** What a release ships: Linux for nodes, macOS for Kubernetes clients. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
];

const ENTRY = "main.ts";
/**
 * dbg's V8 flags, wherever it runs: in the binary, from `./dbg` and from `deno task dbg`. dbg
 * relays bytes, and V8's optimizing compilers (Maglev, TurboFan) add only memory to that: about
 * 8 MiB of peak RSS on a 256 MiB stream (the pages of the deno binary they run in, and their
 * zones), against at most ~5% of the stream's CPU (the output loop waits on I/O, not on
 * JavaScript). Young-generation semi-spaces of 1 MiB save about 1.5 MiB more.
 */
export const V8_FLAGS = "--v8-flags=--no-opt,--no-maglev,--max-semi-space-size=1";
/** The files that run dbg from a checkout, which must pass {@link V8_FLAGS} too. */
const LAUNCHERS = ["dbg", "deno.json"];
/**
 * The runtime modules, loaded with `import()` by computed specifiers (runtimes/mod.ts says
 * why), which `deno compile` cannot follow: it takes them from here. The tests cache them too.
 */
export const INCLUDES = Object.values(MODULES).map((m) => `runtimes/${m.replace(/^\.\//, "")}`);

/** `deno compile`'s arguments for one target (`extra`: flags such as --cached-only). */
export function compileArgs(target: string | undefined, output: string, extra: string[] = []) {
  return [
    "compile",
    "--allow-all",
    V8_FLAGS,
    ...extra,
    ...(target ? ["--target", target] : []),
    ...INCLUDES.flatMap((f) => ["--include", f]),
    "--output",
    output,
    ENTRY,
  ];
}

interface Graph {
  modules: { specifier: string }[];
}

/** The runtime modules that must be in the binary: runtimes/*.ts, less tests and helpers. */
async function runtimeModules(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${ROOT}runtimes`)) {
    if (!e.isFile || !e.name.endsWith(".ts") || e.name.endsWith("_test.ts")) continue;
    if (e.name.startsWith("_") || e.name === "mod.ts") continue;
    names.push(`runtimes/${e.name}`);
  }
  return names.sort();
}

/** What is wrong with the compile graph; empty when it holds everything. */
export async function graphProblems(): Promise<string[]> {
  const specifiers = new Set<string>();
  for (const root of [ENTRY, ...INCLUDES]) {
    const info = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: ROOT,
      stderr: "inherit",
    }).output();
    if (!info.success) return [`deno info ${root} failed`];
    const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as Graph;
    for (const m of graph.modules) specifiers.add(m.specifier);
  }
  const problems: string[] = [];
  for (const file of await runtimeModules()) {
    if (!specifiers.has(new URL(file, `file://${ROOT}`).href)) {
      problems.push(
        `${file} is not in the compile graph: add it to INCLUDES in scripts/compile.ts`,
      );
    }
  }
  for (const file of LAUNCHERS) {
    if (!(await Deno.readTextFile(`${ROOT}${file}`)).includes(V8_FLAGS)) {
      problems.push(`${file} runs dbg without ${V8_FLAGS} (scripts/compile.ts)`);
    }
  }
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  for (const spec of Object.values(config.imports ?? {}) as string[]) {
    if (!spec.startsWith("npm:")) continue;
    if (![...specifiers].some((s) => s === `npm:/${spec.slice(4)}`)) {
      problems.push(`${spec} (deno.json) is not in the compile graph`);
    }
  }
  return problems;
}

async function main(args: string[]): Promise<number> {
  if (args[0] === "--check") {
    const problems = await graphProblems();
    for (const p of problems) console.error(`compile check: ${p}`);
    if (problems.length === 0) console.error("compile check: every runtime module is included");
    return problems.length ? 1 : 0;
  }
  const targets: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const t = args[i] === "--target" ? args[++i] : undefined;
    if (!t || !TARGETS.includes(t)) {
      console.error(`usage: deno task compile [--target ${TARGETS.join("|")}]...`);
      return 2;
    }
    targets.push(t);
  }
  for (const target of targets.length ? targets : TARGETS) {
    const output = `dist/dbg-${target}`;
    const run = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(target, output),
      cwd: ROOT,
    }).spawn().status;
    if (!run.success) return run.code || 1;
    console.error(`compile: ${output}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
