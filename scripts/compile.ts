/**
 * `deno task compile [--target TARGET]...`: dbg as one file per platform, in dist/dbg-TARGET
 * (default: every release target), compiled from dbg's bundle (see {@link bundle}).
 * `deno compile` fetches each target's runtime (denort) from dl.deno.land unless DENORT_BIN
 * names one, so this needs the network once per target.
 *
 * `deno run -A scripts/compile.ts --check` (part of `deno task check`) bundles dbg and proves
 * offline that the compile graph (the bundle's entries, as `deno info` resolves them) holds every
 * runtime module under runtimes/ and every npm package that deno.json imports, so that no
 * adapter is missing from the binary, and that dbg's launchers in the checkout pass the
 * binary's V8 flags.
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

/**
 * dbg's V8 flags, wherever it runs: in the binary, from `./dbg` and from `deno task dbg`. dbg
 * relays bytes, and V8's optimizing compilers (Maglev, TurboFan) add only memory to that: about
 * 8 MiB of peak RSS on a 256 MiB stream (the pages of the deno binary they run in, and their
 * zones), against at most ~5% of the stream's CPU (the output loop waits on I/O, not on
 * JavaScript). Young-generation semi-spaces of 1 MiB save about 1.5 MiB more.
 */
export const V8_FLAGS = "--v8-flags=--no-opt,--no-maglev,--max-semi-space-size=1";
/** Where `deno task compile` bundles dbg, under the checkout. */
const BUNDLE = "dist/bundle";
/** The files that run dbg from a checkout, which must pass {@link V8_FLAGS} too. */
const LAUNCHERS = ["dbg", "deno.json"];
/** The config that maps the bundle's npm imports to packages. */
export const CONFIG = `${ROOT}deno.json`;
/**
 * The bundle's entries: main.ts, and the runtime modules, which it loads with `import()` by
 * computed specifiers (runtimes/mod.ts says why), so that the bundle keeps each in a module of
 * its own that loads only when asked for.
 */
const ENTRIES = ["main.ts", ...MODULES.map((m) => `runtimes/${m}.ts`)];

/**
 * Bundles dbg into `outdir`: main.js, runtimes/<name>.js for each runtime, and the chunks they
 * share, with the npm packages left to deno.json's imports (run it with `--config` and
 * {@link CONFIG}). What the binary runs, and what the tests and the bench run: a few JS modules
 * where there were about forty TypeScript ones, each of which costs Deno work at every start
 * (`dbg --version` in 12.4 ms against 17.0 from main.ts, an empty script 12.4; alternated, 21
 * runs). Returns the path of main.js.
 */
export async function bundle(outdir: string): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(CONFIG)) as { imports?: object };
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=deno",
      "--code-splitting",
      ...Object.keys(config.imports ?? {}).map((name) => `--external=${name}`),
      `--outdir=${outdir}`,
      ...ENTRIES,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno bundle failed: ${new TextDecoder().decode(out.stderr)}`);
  return `${outdir}/main.js`;
}

/** The bundle's runtime modules in `outdir` (for `--include`). */
export function bundledRuntimes(outdir: string): string[] {
  return MODULES.map((m) => `${outdir}/runtimes/${m}.js`);
}

/**
 * `deno compile`'s arguments for one target, from the bundle in `outdir` (`extra`: flags such
 * as --cached-only).
 */
export function compileArgs(
  target: string | undefined,
  outdir: string,
  output: string,
  extra: string[] = [],
) {
  return [
    "compile",
    "--allow-all",
    `--config=${CONFIG}`,
    V8_FLAGS,
    ...extra,
    ...(target ? ["--target", target] : []),
    ...bundledRuntimes(outdir).flatMap((f) => ["--include", f]),
    "--output",
    output,
    `${outdir}/main.js`,
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
  const outdir = await Deno.makeTempDir({ prefix: "dbg-bundle-" });
  const specifiers = new Set<string>();
  try {
    const main = await bundle(outdir);
    for (const root of [main, ...bundledRuntimes(outdir)]) {
      const info = await new Deno.Command(Deno.execPath(), {
        args: ["info", "--json", `--config=${CONFIG}`, root],
        stderr: "inherit",
      }).output();
      if (!info.success) return [`deno info ${root} failed`];
      const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as Graph;
      for (const m of graph.modules) specifiers.add(m.specifier);
    }
  } finally {
    await Deno.remove(outdir, { recursive: true });
  }
  const problems: string[] = [];
  for (const file of await runtimeModules()) {
    const js = `${outdir}/${file.replace(/\.ts$/, ".js")}`;
    if (!specifiers.has(new URL(`file://${js}`).href)) {
      problems.push(`${file} is not in the compile graph: add it to MODULES in runtimes/mod.ts`);
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
  await Deno.remove(`${ROOT}${BUNDLE}`, { recursive: true }).catch(() => {});
  await bundle(`${ROOT}${BUNDLE}`);
  for (const target of targets.length ? targets : TARGETS) {
    const output = `dist/dbg-${target}`;
    const run = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(target, BUNDLE, output),
      cwd: ROOT,
    }).spawn().status;
    if (!run.success) return run.code || 1;
    console.error(`compile: ${output}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
