/**
 * Command-line parsing: argv → what main.ts dispatches on. Values are validated in options.ts.
 *
 * A small parser of our own instead of an npm one: loading commander cost about 40 ms of every
 * run, which is a fifth of a whole `dbg docker T -- true` (see `deno task bench`).
 *
 * Syntax follows `docker run`: options come before the target; after the target, the first
 * other word (or `--`) starts the command, and everything from there on belongs to it.
 *
 * @module
 */

import { ATTACH, AUTO, COMMANDS, GC_K8S, type SubCommand } from "./commands.ts";
import { usageError } from "./errors.ts";
import { commandHelp, completion, mainHelp, SHELLS } from "./help.ts";
import type { RawOptions } from "./options.ts";

/** dbg's version, printed by `--version`. */
export const VERSION = "0.1.0";

/** What argv asks for. */
export type CliRequest =
  | { kind: "print"; text: string }
  | { kind: "tool"; name: string; raw: RawOptions & { json?: boolean } }
  | { kind: "attach"; runtime?: string; name: string; raw: RawOptions }
  | { kind: "debug"; runtime: string; target: string; command: string[]; raw: RawOptions };

/** Parse argv (without the program name). Help and version come back as text to print. */
export function parseArgs(argv: string[]): CliRequest {
  let i = 0;
  let debug = false;
  for (; i < argv.length && argv[i].startsWith("-"); i++) {
    const a = argv[i];
    if (a === "--debug") debug = true;
    else if (a === "--help" || a === "-h") return { kind: "print", text: mainHelp() };
    else if (a === "--version" || a === "-V") return { kind: "print", text: `${VERSION}\n` };
    // A session's option (or `--`): `dbg -q app`, without a runtime word.
    else return parseCommand(AUTO, argv.slice(i), debug);
  }
  if (i >= argv.length) return { kind: "print", text: mainHelp() };
  const name = argv[i];
  const words = namedWord(argv.slice(i + 1), name);
  if (words) return words;
  const k8s = COMMANDS.find((c) => c.name === "k8s")!;
  const rest = argv.slice(i + 1);
  // Kubernetes keeps its flags: `dbg sessions k8s … POD` is `dbg k8s … POD --sessions`.
  if (name === "sessions" && rest[0] === "k8s") {
    return parseCommand(k8s, [...rest.slice(1), "--sessions"], debug);
  }
  if (name === "gc" && rest[0] === "k8s") return parseCommand(GC_K8S, rest.slice(1), debug);
  if (name === "attach") {
    if (rest[0] !== "k8s") return attachRequest(parseCommand(ATTACH, rest, debug));
    if (rest.length < 3) {
      throw usageError("dbg attach k8s needs the pod and the session", `Usage: ${ATTACH.usage}`);
    }
    return parseCommand(k8s, [...rest.slice(1, -1), "--attach", rest.at(-1)!], debug);
  }
  // Any other word is a target, which dbg looks up on every engine.
  const cmd = COMMANDS.find((c) => c.name === name);
  return cmd
    ? parseCommand(cmd, argv.slice(i + 1), debug)
    : parseCommand(AUTO, argv.slice(i), debug);
}

/** A command's options, its target and the command to run. */
function parseCommand(cmd: SubCommand, argv: string[], debug: boolean): CliRequest {
  let i = 0;
  const raw: Record<string, unknown> = debug ? { debug } : {};
  const positional: string[] = [];
  const hint = `See: dbg ${cmd.name ? `${cmd.name} ` : ""}--help`;
  while (i < argv.length) {
    const a = argv[i++];
    if (a === "--") {
      positional.push(...argv.slice(i));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      positional.push(a);
      // After the target, the first other word starts the command: the rest is its argv.
      if (cmd.target && positional.length === 1) continue;
      positional.push(...argv.slice(i));
      break;
    }
    // Long: --name, --name=value. Short: a cluster of flags (-it), where a value option takes
    // the rest of the cluster as its value (-uapp, -eA=1) or else the next word.
    const [flag, inline] = splitInline(a);
    const long = flag.startsWith("--");
    const chars = long ? [flag] : [...flag.slice(1)];
    for (const [n, ch] of chars.entries()) {
      const spec = cmd.options.find((o) => long ? `--${o.long}` === ch : o.short === ch);
      if (!spec) throw usageError(`Unknown option '${long ? a : `-${ch}`}'`, hint);
      if (spec.key === "help") return { kind: "print", text: commandHelp(cmd) };
      if (!spec.value) {
        if (inline !== undefined) throw usageError(`Option '--${spec.long}' takes no value`, hint);
        raw[spec.key] = spec.sets ?? true;
        continue;
      }
      let value = long ? inline : flag.slice(2 + n) || undefined;
      if (value === undefined) {
        if (i >= argv.length) {
          throw usageError(`Option '--${spec.long} <${spec.value}>' needs a value`, hint);
        }
        value = argv[i++];
      }
      if (spec.repeat) raw[spec.key] = [...(raw[spec.key] as string[] ?? []), value];
      else raw[spec.key] = value;
      break;
    }
  }
  if (!cmd.target) {
    if (positional.length) throw usageError(`Unexpected argument '${positional[0]}'`, hint);
    return { kind: "tool", name: cmd.name, raw: raw as RawOptions };
  }
  const [target, ...command] = positional;
  if (!target) throw usageError("Missing the target container", `Usage: ${cmd.usage}`);
  if (cmd === AUTO && COMMANDS.some((c) => c.name === target)) {
    throw usageError(
      `'${target}' is a runtime: it comes before the options`,
      `Usage: dbg ${target} [options] TARGET [--] [COMMAND [ARG...]]`,
    );
  }
  return { kind: "debug", runtime: cmd.name, target, command, raw: raw as RawOptions };
}

/** `dbg attach [RUNTIME] NAME`, as parsed with ATTACH's options. */
function attachRequest(r: CliRequest): CliRequest {
  if (r.kind !== "debug") return r;
  const words = [r.target, ...r.command];
  const runtime = ["docker", "podman", "containerd"].includes(words[0]) ? words.shift() : undefined;
  if (words.length !== 1) {
    throw usageError("dbg attach takes one session name", `Usage: ${ATTACH.usage}`);
  }
  return { kind: "attach", ...(runtime ? { runtime } : {}), name: words[0], raw: r.raw };
}

/** `help [runtime]`, `version` and `completion SHELL`; undefined for anything else. */
function namedWord(rest: string[], name: string): CliRequest | undefined {
  const print = (text: string): CliRequest => ({ kind: "print", text });
  if (name === "version") return print(`${VERSION}\n`);
  if (name === "help") {
    if (rest.length === 0) return print(mainHelp());
    const cmd = COMMANDS.find((c) => c.name === rest[0]);
    if (!cmd) throw usageError(`No help for '${rest[0]}'`, "See: dbg help");
    return print(commandHelp(cmd));
  }
  if (name === "completion") {
    const shell = SHELLS.find((s) => s === rest[0]);
    if (!shell) {
      throw usageError(
        `dbg completion needs a shell: ${SHELLS.join(", ")}`,
        `For bash: eval "$(dbg completion bash)"`,
      );
    }
    return print(completion(shell));
  }
  return undefined;
}

function splitInline(a: string): [string, string | undefined] {
  if (!a.startsWith("--")) return [a, undefined];
  const eq = a.indexOf("=");
  return eq < 0 ? [a, undefined] : [a.slice(0, eq), a.slice(eq + 1)];
}
