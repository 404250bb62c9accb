/**
 * Command-line parsing (commander). Turns argv into what main.ts dispatches on; validation of
 * the values happens in options.ts.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { DbgError, usageError } from "./errors.ts";
import type { RawOptions } from "./options.ts";

/** dbg's version, printed by `--version`. */
export const VERSION = "0.1.0";

/** The runtimes dbg has an adapter for, in help order. */
export const RUNTIMES = ["docker"] as const;

/** What argv asks for. */
export type CliRequest =
  | { kind: "print"; text: string }
  | { kind: "images"; json: boolean }
  | { kind: "debug"; runtime: string; target: string; command: string[]; raw: RawOptions };

const EXAMPLES = `
Examples:
  dbg docker app                           shell in a shell-less container; / is app's rootfs
  dbg docker app -- cat /etc/os-release    run one command; its exit code is dbg's
  echo hi | dbg docker app -i -- cat       pipe stdin to the command
  dbg docker app --image nix:curl,jq       tools from nixery.dev (catalog: dbg images)
  dbg docker app --dry-run                 print the plan as JSON, create nothing`;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function addSessionOptions(cmd: Command): Command {
  return cmd
    .option("--image <ref>", "debugger image: an alias from `dbg images`, nix:pkg,pkg, or any ref")
    .addOption(
      new Option("--pull <policy>", "when to pull the image").choices([
        "missing",
        "always",
        "never",
      ])
        .default("missing"),
    )
    .addOption(
      new Option("--mode <mode>", "target shell: auto, chroot, mount or plain")
        .choices(["auto", "chroot", "mount", "plain"]).default("auto"),
    )
    .option("-u, --user <user>", "run the shell or command as USER[:GROUP] or UID[:GID]")
    .option("-e, --env <NAME=VALUE>", "set an environment variable (repeatable)", collect, [])
    .option("-w, --workdir <dir>", "start in this directory (default: the target's)")
    .option("--privileged", "give the sidecar all privileges (allows --mode mount)")
    .option("-i, --interactive", "connect stdin even without a TTY (for pipes)")
    .option("-t, --tty", "allocate a TTY (default when stdin is a terminal)")
    .option("-T, --no-tty", "do not allocate a TTY")
    .option("--name <name>", "sidecar name (default dbg-<session id>)")
    .option("--keep", "keep the sidecar after exit (for inspection)")
    .option("--dry-run", "print the plan as JSON and create nothing")
    .option("-q, --quiet", "no banner or pull progress")
    .option("--debug", "print diagnostics and error details");
}

function buildProgram(onRequest: (r: CliRequest) => void): Command {
  const program = new Command("dbg")
    .description(
      "Debug running containers whose images have no shell: a sidecar shares the target's\n" +
        "PID, network and IPC namespaces and shows the target's filesystem as /.",
    )
    .usage("<runtime> [options] TARGET [-- COMMAND [ARG...]]")
    .version(VERSION, "-V, --version")
    .option("--debug", "print diagnostics and error details")
    .addHelpText("after", EXAMPLES)
    .showSuggestionAfterError(true)
    .exitOverride();

  const docker = program.command("docker")
    .description("debug a Docker container (by name, id or id prefix)")
    .usage("[options] TARGET [-- COMMAND [ARG...]]")
    .argument("<target>", "container name, id or id prefix")
    .argument("[command...]", "command and arguments to run instead of a shell (after --)")
    .option("-H, --host <url>", "Docker endpoint (unix:///path or tcp://host:port)")
    .exitOverride();
  addSessionOptions(docker).action((target: string, command: string[], raw: RawOptions) => {
    const debug = raw.debug || !!program.opts().debug;
    onRequest({ kind: "debug", runtime: "docker", target, command, raw: { ...raw, debug } });
  });

  program.command("images")
    .description("list the built-in debugger image catalog")
    .option("--json", "print JSON")
    .exitOverride()
    .action((o: { json?: boolean }) => onRequest({ kind: "images", json: !!o.json }));
  return program;
}

/**
 * Parse argv (without the program name). Help and version come back as text to print; bad
 * flags become a usage `DbgError` (exit 125, like docker).
 */
export function parseArgs(argv: string[]): CliRequest {
  let request: CliRequest | undefined;
  let printed = "";
  const program = buildProgram((r) => (request = r));
  const capture = {
    writeOut: (s: string) => (printed += s),
    writeErr: (s: string) => (printed += s),
  };
  program.configureOutput(capture);
  for (const sub of program.commands) sub.configureOutput(capture);
  if (argv.length === 0) return { kind: "print", text: program.helpInformation() };
  try {
    program.parse(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") {
        return { kind: "print", text: printed };
      }
      if (e.code === "commander.help") return { kind: "print", text: printed };
      throw cliError(e);
    }
    throw e;
  }
  if (!request) throw usageError("Nothing to do");
  return request;
}

function cliError(e: CommanderError): DbgError {
  const msg = e.message.replace(/^error: /, "");
  const first = msg.charAt(0).toUpperCase() + msg.slice(1);
  if (e.code === "commander.unknownCommand") {
    return usageError(
      first.split("\n")[0],
      `Runtimes: ${RUNTIMES.join(", ")}; see: dbg --help`,
    );
  }
  return usageError(first.split("\n")[0].replace(/\.$/, ""));
}
