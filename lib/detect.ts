/**
 * Auto-detection's verdict: `dbg TARGET` asked every engine at once (runtimes/local.ts), and
 * this file decides from their answers. One match is the session's; several are an error that
 * gives the exact command for each; none is one line that says where dbg looked.
 *
 * @module
 */

import { COMMANDS } from "./commands.ts";
import { DbgError, EngineUnreachable, NoSuchTarget } from "./errors.ts";

/** One place auto-detection looks: an engine at one endpoint. */
export interface Place {
  /** The runtime word (`dbg podman`). */
  runtime: string;
  /** The endpoint, as messages show it. */
  where: string;
  /** What `dbg RUNTIME` needs to reach this endpoint by itself (`-H unix:///…`), if anything. */
  flags: string[];
}

/** What one place answered: the target's facts (with its id), or why not. */
export type Answer<T> =
  | { place: Place; found: T; id: string }
  | { place: Place; error: unknown };

/**
 * The one match, or the error to throw. `argv` is dbg's own, to print the exact commands.
 * Two places that found the same container (Docker's, through its containerd) are one match.
 */
export function decide<T>(
  target: string,
  answers: Answer<T>[],
  argv: string[],
): { place: Place; found: T } {
  const matches: Array<{ place: Place; found: T; id: string }> = [];
  for (const a of answers) {
    if ("found" in a && !matches.some((m) => m.id === a.id)) matches.push(a);
  }
  if (matches.length === 1) return matches[0];
  const command = (p: Place) => shellWords(["dbg", p.runtime, ...p.flags, ...argv]);
  if (matches.length > 1) {
    throw new DbgError(
      `${target} is on ${matches.length} engines: ${
        matches.map((m) => `${m.place.runtime} (${m.place.where})`).join(", ")
      }`,
      { hint: `Name the runtime: ${matches.map((m) => command(m.place)).join("  or  ")}` },
    );
  }
  const failed = answers.filter((a): a is { place: Place; error: unknown } => "error" in a);
  // An engine that has the target but cannot debug it (paused, an ambiguous prefix) says why.
  const said = failed.filter((a) =>
    !(a.error instanceof NoSuchTarget) && !(a.error instanceof EngineUnreachable)
  );
  if (said.length === 1 && said[0].error instanceof DbgError) throw said[0].error;
  const looked = failed.map(describeFailure);
  const asked = failed.filter((a) => a.error instanceof NoSuchTarget);
  // The first word may have been meant as a runtime (dbg nerdctl app).
  const runtimes = `Runtimes: ${COMMANDS.filter((c) => c.target).map((c) => c.name).join(", ")}`;
  if (!asked.length) throw noEngine(`to look for ${target} in`, failed, ` ${runtimes}`);
  throw new DbgError(`No container ${target} on ${looked.join(", ")}`, {
    hint: `List containers with: ${
      [...new Set(asked.map((a) => listCommand(a.place)))].join(", ")
    }. ${runtimes}`,
  });
}

/** No engine could be asked (`what`: what for), each with why. */
export function noEngine(
  what: string,
  failed: Array<{ place: Place; error: unknown }>,
  more = "",
): DbgError {
  return new DbgError(`No engine ${what}: ${failed.map(describeFailure).join(", ")}`, {
    hint: `Start one, or point dbg at it: DOCKER_HOST, CONTAINER_HOST, CONTAINERD_ADDRESS.${more}`,
  });
}

/** An engine that did not have the target, or could not be asked: `podman (WHERE: why)`. */
export function describeFailure({ place, error }: { place: Place; error: unknown }): string {
  const why = error instanceof NoSuchTarget
    ? ""
    : error instanceof EngineUnreachable
    ? error.detail
    : reason(error);
  return `${place.runtime} (${place.where}${why ? `: ${why}` : ""})`;
}

function listCommand(p: Place): string {
  return p.runtime === "containerd" ? "ctr tasks ls" : `${p.runtime} ps`;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Words as a POSIX shell reads them back: quoted only where needed. */
export function shellWords(words: string[]): string {
  return words.map((w) => /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}
