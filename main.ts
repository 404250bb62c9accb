/**
 * dbg's entry point: parse argv, load the chosen runtime's adapter, run, and map every error to
 * an exit code in one place. Only this file calls `Deno.exit`.
 *
 * @module
 */

import { CATALOG, resolveImage } from "./images/catalog.ts";
import { parseArgs } from "./lib/cli.ts";
import type { RuntimeAdapter, TargetFacts } from "./lib/adapter.ts";
import { describeFailure, noEngine } from "./lib/detect.ts";
import { DbgError, EngineUnreachable, EXIT_DBG, formatError, usageError } from "./lib/errors.ts";
import { garbage, gcLine, type Placed, sessionsTable } from "./lib/gc.ts";
import {
  type DebugOptions,
  type PullPolicy,
  type RawOptions,
  validateOptions,
} from "./lib/options.ts";
import { makePlan, planForDisplay } from "./lib/plan.ts";
import { printableLines } from "./lib/printable.ts";
import { pullProgress } from "./lib/progress.ts";
import { runSession } from "./lib/session.ts";
import { localWriter } from "./lib/streams.ts";
import type { Holding } from "./runtimes/local.ts";
import { DETECTED_SUPPORTS, loadAdapter, runtimeModule } from "./runtimes/mod.ts";

type Local = typeof import("./runtimes/local.ts");

const enc = new TextEncoder();
/** Settles when stderr is gone: a session then ends as on SIGPIPE (lib/session.ts). */
const stderrLost = Promise.withResolvers<void>();
/**
 * Lines on stderr: words from outside (engines, kubelets) cannot drive the terminal. A write to
 * a closed pipe throws nothing at the caller (dbg must still remove what it made).
 */
const say = (s: string) => {
  try {
    Deno.stderr.writeSync(enc.encode(printableLines(s) + "\n"));
  } catch {
    stderrLost.resolve();
  }
};

async function run(argv: string[], setDebug: (d: boolean) => void): Promise<number> {
  const req = parseArgs(argv);
  if (req.kind === "print") {
    await Deno.stdout.write(enc.encode(req.text));
    return 0;
  }
  setDebug(!!req.raw.debug);
  const debug = debugLine(!!req.raw.debug);
  if (req.kind === "attach") return await attach(req, debug);
  if (req.kind === "tool") {
    if (req.name === "images") {
      console.log(req.raw.json ? JSON.stringify(CATALOG, null, 2) : imagesTable());
      return 0;
    }
    if (req.name === "gc k8s") return await gc([await kubeHolding(req.raw, debug)], req.raw);
    return await sessionsOrGc(req.name, req.raw, debug);
  }
  // No runtime word: the target is looked up on every engine (runtimes/local.ts).
  const named = req.runtime ? await loadAdapter(req.runtime) : undefined;
  const opts = validateOptions(req, req.raw, {
    io: localIo(),
    supports: named?.supports ?? DETECTED_SUPPORTS,
    env: (name) => Deno.env.get(name),
  });
  const connect = {
    host: opts.host,
    namespace: opts.namespace,
    podNamespace: opts.podNamespace,
    insecureRegistries: opts.insecureRegistries,
    kubeconfig: opts.kubeconfig,
    context: opts.context,
    timeoutMs: opts.timeoutMs,
    copy: opts.copy,
    debug,
    notice: opts.quiet ? undefined : say,
  };
  let adapter: RuntimeAdapter;
  let facts: TargetFacts;
  if (named) {
    adapter = named;
    await adapter.connect(connect);
    facts = opts.fromImage
      ? await inspectImage(adapter, opts.fromImage, opts)
      : await adapter.inspectTarget(opts.target);
  } else {
    const { detectTarget } = await runtimeModule<Local>("local");
    ({ adapter, facts } = await detectTarget(opts.target, Deno.args, connect));
  }
  debug(`target facts: ${JSON.stringify(facts)}`);
  if (opts.sessions) {
    if (!adapter.listSessions) {
      throw usageError(
        `--sessions is not supported for ${adapter.name}`,
        `See: dbg ${adapter.name} --help`,
      );
    }
    console.log(await adapter.listSessions());
    return 0;
  }
  return await debugSession(adapter, opts, facts, debug);
}

/** Plan the session, and run it (or print the plan). */
async function debugSession(
  adapter: RuntimeAdapter,
  opts: DebugOptions,
  facts: TargetFacts,
  debug: (m: string) => void,
): Promise<number> {
  const image = resolveImage(opts.image);
  const plan = makePlan({ ...opts, runtime: adapter.name }, facts, image);
  if (opts.dryRun) {
    console.log(JSON.stringify(planForDisplay(plan), null, 2));
    return 0;
  }
  const progress = pullProgress(image.ref, !opts.quiet && Deno.stderr.isTerminal());
  return await runSession(adapter, plan, {
    stdin: Deno.stdin,
    stdout: localWriter(Deno.stdout, 1),
    stderr: localWriter(Deno.stderr, 2),
    debug,
    progress,
    banner: !opts.quiet,
    lost: stderrLost.promise,
  });
}

/** `dbg attach [RUNTIME] NAME`: the session found on the local engines, joined. */
async function attach(
  req: { runtime?: string; name: string; raw: RawOptions },
  debug: (m: string) => void,
): Promise<number> {
  const { findSession } = await runtimeModule<Local>("local");
  const { adapter, part, place } = await findSession(req.name, { debug }, req.runtime);
  if (!adapter.supports.attach) {
    throw new DbgError(
      `${req.name} cannot be joined: ${place.runtime} sessions keep one terminal`,
      {
        hint: `Start another session beside it: dbg ${place.runtime} ${part.target}`,
      },
    );
  }
  const facts = await adapter.inspectTarget(part.target);
  const opts = validateOptions(
    { runtime: adapter.name, target: part.target, command: [] },
    { ...req.raw, attach: req.name },
    { io: localIo(), supports: adapter.supports },
  );
  return await debugSession(adapter, opts, facts, debug);
}

/** `dbg sessions` and `dbg gc`, on every engine that `dbg TARGET` looks at. */
async function sessionsOrGc(
  word: string,
  raw: { json?: boolean; dryRun?: boolean },
  debug: (m: string) => void,
): Promise<number> {
  const { listParts } = await runtimeModule<Local>("local");
  const { held, failed } = await listParts({ debug });
  const down = failed.filter((f) => !(f.error instanceof EngineUnreachable && f.error.absent));
  if (!held.length) throw noEngine("to ask", failed);
  if (down.length) say(`dbg: could not ask ${down.map(describeFailure).join(", ")}`);
  if (word === "gc") return await gc(held, raw);
  const all = held.flatMap(placed);
  console.log(raw.json ? JSON.stringify(all, null, 2) : sessionsTable(all, Date.now()));
  return 0;
}

/** `dbg gc`: what no live session uses, removed (or listed, with --dry-run). */
async function gc(held: Holding[], raw: { dryRun?: boolean }): Promise<number> {
  const now = Date.now();
  const lines: string[] = [];
  for (const h of held) {
    const bad = garbage(h.parts, now);
    if (!raw.dryRun && bad.length) await h.adapter.removeParts!(bad);
    lines.push(...placed({ ...h, parts: bad }).map((p) => gcLine(p, !!raw.dryRun, now)));
  }
  const where = held.map((h) => `${h.place.runtime} (${h.place.where})`).join(", ");
  console.log(lines.length ? lines.join("\n") : `Nothing to remove on ${where}`);
  return 0;
}

/** An engine's parts, each with the runtime that holds it. */
function placed(h: Holding): Placed[] {
  return h.parts.map((p) => ({ ...p, runtime: h.place.runtime }));
}

/** The namespace of `dbg gc k8s`, and dbg's pods there. */
async function kubeHolding(raw: RawOptions, debug: (m: string) => void): Promise<Holding> {
  const adapter = await loadAdapter("k8s");
  const { namespace, kubeconfig, context } = raw;
  await adapter.connect({ namespace, kubeconfig, context, debug });
  const parts = await adapter.sessionParts!();
  return {
    place: {
      runtime: "k8s",
      where: namespace ? `namespace ${namespace}` : "the context's namespace",
      flags: [],
    },
    adapter,
    parts,
  };
}

/** --debug's lines, with the time since dbg started. */
function debugLine(on: boolean): (m: string) => void {
  // performance.now() counts from process start
  return on ? (m) => say(`dbg[debug] +${Math.round(performance.now())}ms: ${m}`) : () => {};
}

/** What validateOptions needs to know of the local terminal. */
function localIo() {
  return {
    stdinIsTerminal: Deno.stdin.isTerminal(),
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    term: Deno.env.get("TERM"),
  };
}

/** An image target: pulled as the debugger image is (policy, progress, credentials). */
async function inspectImage(
  adapter: RuntimeAdapter,
  ref: string,
  opts: { pull: PullPolicy; quiet: boolean },
): Promise<TargetFacts> {
  const progress = pullProgress(ref, !opts.quiet && Deno.stderr.isTerminal());
  await adapter.ensureImage(ref, { pull: opts.pull, progress });
  return await adapter.inspectImage!(ref);
}

function imagesTable(): string {
  const rows = [["ALIAS", "IMAGE", "TOOLS", "DESCRIPTION"]];
  for (const e of CATALOG) {
    const tools = e.nix ? "nix" : e.static ? "static" : "dynamic";
    rows.push([e.name, e.nix ? `${e.ref}/PKG/…` : e.ref, tools, e.description]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows.map((r) => r.map((c, i) => i < 3 ? c.padEnd(widths[i]) : c).join("  "));
  table.push(
    "",
    "Any other reference works too (--image REF): chroot mode if its shell is static, else plain.",
  );
  return table.join("\n");
}

if (import.meta.main) {
  const dash = Deno.args.indexOf("--");
  let debug = (dash < 0 ? Deno.args : Deno.args.slice(0, dash)).includes("--debug");
  let code: number;
  try {
    code = await run(Deno.args, (d) => (debug = d));
  } catch (err) {
    say(formatError(err, debug));
    code = (err as { exitCode?: number })?.exitCode ?? EXIT_DBG;
  }
  Deno.exit(code);
}
