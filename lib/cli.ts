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

import { usageError } from "./errors.ts";
import type { RawOptions } from "./options.ts";

/** dbg's version, printed by `--version`. */
export const VERSION = "0.1.0";

/** What argv asks for. */
export type CliRequest =
  | { kind: "print"; text: string }
  | { kind: "images"; json: boolean }
  | { kind: "debug"; runtime: string; target: string; command: string[]; raw: RawOptions };

/** One option of a subcommand. */
interface OptSpec {
  long: string;
  short?: string;
  /** Placeholder of the value; absent for a boolean flag. */
  value?: string;
  key: keyof RawOptions | "json" | "help";
  /** For booleans: the value the flag sets (`-T` sets tty=false). */
  sets?: boolean;
  repeat?: boolean;
  help: string;
}

const HELP: OptSpec = { long: "help", short: "h", key: "help", help: "show this help" };

const SESSION_OPTIONS: OptSpec[] = [
  {
    long: "image",
    value: "ref",
    key: "image",
    help: "debugger image: an alias from `dbg images`, nix:pkg,pkg, or any ref",
  },
  { long: "pull", value: "policy", key: "pull", help: "missing (default), always or never" },
  { long: "mode", value: "mode", key: "mode", help: "auto (default), chroot, mount or plain" },
  {
    long: "user",
    short: "u",
    value: "user",
    key: "user",
    help: "run as USER[:GROUP] or UID[:GID] of the target",
  },
  {
    long: "env",
    short: "e",
    value: "NAME[=VALUE]",
    key: "env",
    repeat: true,
    help: "set a variable; NAME alone passes this shell's value (repeatable)",
  },
  {
    long: "workdir",
    short: "w",
    value: "dir",
    key: "workdir",
    help: "start in this directory (default: the target's)",
  },
  {
    long: "profile",
    value: "name",
    key: "profile",
    help: "general (adds SYS_PTRACE), baseline, restricted, netadmin, sysadmin; " +
      "default auto: general, or what the k8s namespace's Pod Security allows",
  },
  {
    long: "target-path",
    key: "targetPath",
    help: "also run the target's programs by name (its PATH after the tools')",
  },
  { long: "privileged", key: "privileged", help: "give the sidecar all privileges" },
  {
    long: "interactive",
    short: "i",
    key: "interactive",
    help: "connect stdin without a TTY (pipes)",
  },
  {
    long: "tty",
    short: "t",
    key: "tty",
    sets: true,
    help: "allocate a TTY (default when stdin and stdout are terminals)",
  },
  { long: "no-tty", short: "T", key: "tty", sets: false, help: "do not allocate a TTY" },
  { long: "name", value: "name", key: "name", help: "sidecar name (default dbg-<session id>)" },
  { long: "keep", key: "keep", help: "keep the sidecar after exit (for inspection)" },
  { long: "dry-run", key: "dryRun", help: "print the plan as JSON and create nothing" },
  { long: "quiet", short: "q", key: "quiet", help: "no banner and no pull progress" },
  { long: "debug", key: "debug", help: "print diagnostics and error details" },
  HELP,
];

interface SubCommand {
  name: string;
  summary: string;
  usage: string;
  options: OptSpec[];
  /** Takes TARGET [COMMAND…]. */
  target: boolean;
}

const COMMANDS: SubCommand[] = [
  {
    name: "docker",
    summary: "debug a Docker container (by name, id or id prefix)",
    usage: "dbg docker [options] TARGET [--] [COMMAND [ARG...]]",
    options: [
      {
        long: "host",
        short: "H",
        value: "url",
        key: "host",
        help: "Docker endpoint: unix:///path or tcp://host:port",
      },
      {
        long: "network",
        value: "net",
        key: "network",
        help: "network of a copy of a target that does not run (default none): host or a name",
      },
      ...SESSION_OPTIONS,
    ],
    target: true,
  },
  {
    name: "containerd",
    summary: "debug a containerd task (id, id prefix, nerdctl name, or POD/CONTAINER)",
    usage: "dbg containerd [options] TARGET [--] [COMMAND [ARG...]]",
    options: [
      {
        long: "address",
        value: "path",
        key: "host",
        help: "containerd socket (default: $CONTAINERD_ADDRESS, then the usual places)",
      },
      {
        long: "namespace",
        short: "n",
        value: "ns",
        key: "namespace",
        help: "containerd namespace (default: $CONTAINERD_NAMESPACE, else all)",
      },
      {
        long: "pod-namespace",
        value: "ns",
        key: "podNamespace",
        help: "Kubernetes namespace of POD/CONTAINER (CRI labels)",
      },
      {
        long: "insecure-registry",
        value: "host",
        key: "insecureRegistry",
        repeat: true,
        help: "pull from this registry over plain HTTP (localhost always is)",
      },
      {
        long: "network",
        value: "net",
        key: "network",
        help: "network of a copy of a container without a task: none (default) or host",
      },
      ...SESSION_OPTIONS,
    ],
    target: true,
  },
  {
    name: "k8s",
    summary: "debug a pod's container or a node (POD[/CONTAINER], deploy/NAME, node/NAME)",
    usage: "dbg k8s [options] TARGET [--] [COMMAND [ARG...]]",
    options: [
      {
        long: "namespace",
        short: "n",
        value: "ns",
        key: "namespace",
        help: "the pod's namespace (default: the context's)",
      },
      {
        long: "kubeconfig",
        value: "file",
        key: "kubeconfig",
        help: "kubeconfig file(s), ':'-separated (default: $KUBECONFIG, ~/.kube/config)",
      },
      { long: "context", value: "name", key: "context", help: "kubeconfig context" },
      {
        long: "timeout",
        value: "duration",
        key: "timeout",
        help: "how long to wait for the debug container to start (default 2m)",
      },
      {
        long: "sessions",
        key: "sessions",
        help: "list the dbg containers in the pod, running or not",
      },
      {
        long: "attach",
        value: "name",
        key: "attach",
        help: "reattach to a running dbg container of the pod",
      },
      {
        long: "copy",
        key: "copy",
        help: "debug a copy of the pod in which the container runs the debugger's keeper " +
          "(for a container that crashes or has ended)",
      },
      { long: "keep", key: "keep", help: "keep the copy (or node) pod after exit" },
      ...SESSION_OPTIONS.filter((o) => o.key !== "keep" && o.key !== "name"),
    ],
    target: true,
  },
  {
    name: "images",
    summary: "list the built-in debugger image catalog",
    usage: "dbg images [--json]",
    options: [{ long: "json", key: "json", help: "print JSON" }, HELP],
    target: false,
  },
];

const GLOBAL: OptSpec[] = [
  { long: "debug", key: "debug", help: "print diagnostics and error details" },
  { long: "version", short: "V", key: "help", help: "print the version" },
  HELP,
];

const EXAMPLES = `Examples:
  dbg docker app                           shell in a shell-less container; / is app's rootfs
  dbg docker app -- cat /etc/os-release    run one command; its exit code is dbg's
  echo hi | dbg docker app -i -- cat       pipe stdin to the command
  dbg docker app --image nix:curl,jq       tools from nixery.dev (catalog: dbg images)
  dbg docker app --dry-run                 print the plan as JSON, create nothing
  dbg docker image:nginx:1.25              a throwaway container of an image (dead ones: copies)
  dbg containerd -n k8s.io web/api         a pod's container on a node, below Kubernetes
  dbg k8s -n shop deploy/web -- ps         an ephemeral container in a running pod of web
  dbg k8s web/api --copy                   a copy of pod web (api crashloops), under the debugger
  dbg k8s node/worker-1                    the node's root filesystem as /`;

function optionLines(opts: OptSpec[]): string {
  const left = (o: OptSpec) =>
    `${o.short ? `-${o.short}, ` : "    "}--${o.long}${o.value ? ` <${o.value}>` : ""}`;
  const width = Math.max(...opts.map((o) => left(o).length));
  return opts.map((o) => `  ${left(o).padEnd(width)}  ${o.help}`).join("\n");
}

function mainHelp(): string {
  const cmds = COMMANDS.map((c) => `  ${c.name.padEnd(8)}  ${c.summary}`).join("\n");
  return `Usage: dbg <runtime> [options] TARGET [-- COMMAND [ARG...]]

Debug running containers whose images have no shell: a sidecar shares the target's
PID, network and IPC namespaces and shows the target's filesystem as /.

Commands:
${cmds}

Options:
${optionLines(GLOBAL)}

${EXAMPLES}
`;
}

function commandHelp(c: SubCommand): string {
  return `Usage: ${c.usage}\n\n${c.summary}\n\nOptions:\n${optionLines(c.options)}\n${
    c.target ? `\n${EXAMPLES}\n` : ""
  }`;
}

/** Parse argv (without the program name). Help and version come back as text to print. */
export function parseArgs(argv: string[]): CliRequest {
  let i = 0;
  let debug = false;
  for (; i < argv.length && argv[i].startsWith("-"); i++) {
    const a = argv[i];
    if (a === "--debug") debug = true;
    else if (a === "--help" || a === "-h") return { kind: "print", text: mainHelp() };
    else if (a === "--version" || a === "-V") return { kind: "print", text: `${VERSION}\n` };
    else throw usageError(`Unknown option '${a}'`, "See: dbg --help");
  }
  if (i >= argv.length) return { kind: "print", text: mainHelp() };
  const name = argv[i++];
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    throw usageError(
      `Unknown command '${name}'`,
      `Runtimes: ${
        COMMANDS.filter((c) => c.target).map((c) => c.name).join(", ")
      }; see: dbg --help`,
    );
  }
  const raw: Record<string, unknown> = debug ? { debug } : {};
  const positional: string[] = [];
  const hint = `See: dbg ${cmd.name} --help`;
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
    return { kind: "images", json: !!raw.json };
  }
  const [target, ...command] = positional;
  if (!target) throw usageError("Missing the target container", `Usage: ${cmd.usage}`);
  return { kind: "debug", runtime: cmd.name, target, command, raw: raw as RawOptions };
}

function splitInline(a: string): [string, string | undefined] {
  if (!a.startsWith("--")) return [a, undefined];
  const eq = a.indexOf("=");
  return eq < 0 ? [a, undefined] : [a.slice(0, eq), a.slice(eq + 1)];
}
