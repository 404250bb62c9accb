/**
 * What dbg prints about itself: the help (80 columns), and completion scripts for bash, zsh and
 * fish, all made from the command table (commands.ts), so that they cannot drift from the
 * parser.
 *
 * @module
 */

import { ATTACH, AUTO, COMMANDS, type OptSpec, type SubCommand } from "./commands.ts";

const WIDTH = 80;

/** dbg's words besides the runtimes. */
const WORDS: Array<[string, string]> = [
  ["images", "list the built-in debugger images"],
  ["sessions", "list dbg's sidecars and copies, and who is attached"],
  ["attach NAME", "join a running session from another terminal"],
  ["gc [--dry-run]", "remove what ended dbg sessions left"],
  ["help [runtime]", "show this help, or a runtime's"],
  ["version", "print dbg's version"],
  ["completion SHELL", "print a completion script for bash, zsh or fish"],
];

const EXIT_CODES: Array<[string, string]> = [
  ["N", "the command's own exit code"],
  ["125", "dbg itself failed: a bad flag, no such target, the engine refused"],
  ["126", "the command cannot run (not executable, -w not a directory)"],
  ["127", "the command was not found"],
  ["128+N", "ended by signal N: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP, 141 closed pipe"],
];

/** `text` wrapped to the width, every line after the first indented by `indent`. */
function wrap(text: string, indent: number, first = indent): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    const room = WIDTH - (lines.length ? indent : first);
    if (line && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

/** Two columns: the left padded to the widest left, the right wrapped under itself. */
function table(rows: Array<[string, string]>, max = 30): string {
  const width = Math.max(...rows.map(([l]) => l.length).filter((n) => n <= max));
  return rows.map(([left, right]) => {
    const indent = 2 + width + 2;
    // A left column too wide for the table puts its text on the next line.
    if (left.length > width) return `  ${left}\n${" ".repeat(indent)}${wrap(right, indent)}`;
    return `  ${left.padEnd(width)}  ${wrap(right, indent)}`;
  }).join("\n");
}

function flag(o: OptSpec): string {
  return `${o.short ? `-${o.short}, ` : "    "}--${o.long}${
    o.value ? ` ${o.value.toUpperCase()}` : ""
  }`;
}

function section(title: string, body: string): string {
  return `${title}:\n${body}`;
}

/** `dbg --help`. */
export function mainHelp(): string {
  const runtimes = COMMANDS.filter((c) => c.target);
  return [
    "Usage: dbg <runtime> [options] TARGET [-- COMMAND [ARG...]]\n" +
    "       dbg [options] TARGET [-- COMMAND [ARG...]]  (runtime found by dbg)",
    wrap(
      "Debug containers whose images have no shell: a sidecar joins the target's PID and " +
        "network namespaces (and its IPC where the target allows) and shows the target's " +
        "filesystem as /, with the debugger image's tools on PATH.",
      0,
    ),
    section("Runtimes", table(runtimes.map((c) => [c.name, c.summary]))),
    section("Other commands", table(WORDS)),
    section(
      "Examples",
      table([
        ...AUTO.examples!.slice(0, 1),
        ...runtimes.map((c) => c.examples![0]),
        ["dbg help docker", "a runtime's flags"],
      ], 40),
    ),
    section("Exit codes", table(EXIT_CODES)),
  ].join("\n\n") + "\n";
}

/** `dbg <runtime> --help`. */
export function commandHelp(c: SubCommand): string {
  return [
    `Usage: ${c.usage}`,
    wrap(`${c.summary[0].toUpperCase()}${c.summary.slice(1)}.`, 0),
    ...(c.defaults ? [wrap(c.defaults, 0)] : []),
    section("Options", table(c.options.map((o) => [flag(o), o.help]))),
    ...(c.examples ? [section("Examples", table(c.examples, 40))] : []),
    ...(c.target ? [section("Exit codes", table(EXIT_CODES))] : []),
  ].join("\n\n") + "\n";
}

/** The shells `dbg completion` knows. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/**
 * A completion script: runtimes and words first, then a runtime's flags, and container or pod
 * names where a CLI lists them cheaply (docker ps, kubectl get pods).
 */
export function completion(shell: typeof SHELLS[number]): string {
  return shell === "fish" ? fishCompletion() : bashCompletion(shell === "zsh");
}

const TARGETS: Record<string, string> = {
  docker: `docker ps --format '{{.Names}}' 2>/dev/null`,
  podman: `podman ps --format '{{.Names}}' 2>/dev/null`,
  k8s: `kubectl get pods -o name 2>/dev/null | sed 's,^pod/,,'`,
};

/** The words a completion script offers first, each with its flags. */
const COMPLETED = [...COMMANDS, ATTACH];

function longFlags(c: SubCommand): string {
  return c.options.flatMap((o) => [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])]).join(" ");
}

function bashCompletion(zsh: boolean): string {
  const cases = COMPLETED.map((c) => {
    const targets = TARGETS[c.name] ? `$(${TARGETS[c.name]})` : "";
    return `    ${c.name}) flags="${longFlags(c)}"; targets="${targets}" ;;`;
  }).join("\n");
  const words = [...COMPLETED.map((c) => c.name), "help", "version", "completion"].join(" ");
  const zshInit = "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }\n" +
    "autoload -U +X bashcompinit && bashcompinit\n";
  return `${zsh ? zshInit : ""}# dbg completion (${zsh ? "zsh" : "bash"}): eval "$(dbg completion ${
    zsh ? "zsh" : "bash"
  })"
# ($2 is the word to complete; COMP_WORDS counts from 0 in bash and from 1 in zsh.)
_dbg() {
  local cur=$2 flags= targets=
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${words}" -- "$cur"))
    return
  fi
  set -- "\${COMP_WORDS[@]}"
  case $2 in
${cases}
    help) COMPREPLY=($(compgen -W "${COMMANDS.map((c) => c.name).join(" ")}" -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W "${SHELLS.join(" ")}" -- "$cur")); return ;;
  esac
  case $cur in
    -*) COMPREPLY=($(compgen -W "$flags" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -W "$targets" -- "$cur")) ;;
  esac
}
complete -F _dbg dbg
`;
}

function fishCompletion(): string {
  const lines = [
    "# dbg completion (fish): dbg completion fish | source",
    "complete -c dbg -f",
    ...COMPLETED.map((c) =>
      `complete -c dbg -n __fish_use_subcommand -a ${c.name} -d ${fishQuote(c.summary)}`
    ),
    ...["help", "version", "completion"].map((w) =>
      `complete -c dbg -n __fish_use_subcommand -a ${w}`
    ),
  ];
  for (const c of COMPLETED) {
    for (const o of c.options) {
      lines.push(
        `complete -c dbg -n '__fish_seen_subcommand_from ${c.name}' -l ${o.long}` +
          `${o.short ? ` -s ${o.short}` : ""}${o.value ? " -r" : ""} -d ${fishQuote(o.help)}`,
      );
    }
    if (TARGETS[c.name]) {
      lines.push(
        `complete -c dbg -n '__fish_seen_subcommand_from ${c.name}' -a ${
          fishQuote(`(${TARGETS[c.name]})`)
        }`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

function fishQuote(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}
