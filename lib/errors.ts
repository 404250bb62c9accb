/**
 * dbg's one error type and the named helpers that create it.
 *
 * Every failure a user can cause becomes a `DbgError` with a one-line message that names the
 * thing, an optional hint (what to do next) and an exit code. `main.ts` prints it and exits;
 * nothing else calls `Deno.exit`. Attach the hint where the cause is known, never by matching
 * text later.
 *
 * @module
 */

import { printable, printableLines } from "./printable.ts";

/** Exit code for dbg's own failures and the runtime's, like `docker run`. */
export const EXIT_DBG = 125;

/** An error dbg reports to the user as one line plus a hint. */
export class DbgError extends Error {
  /** What to do next, printed after `Hint:`. */
  readonly hint?: string;
  /** The process exit code; 125 unless the failure has its own (126, 127). */
  readonly exitCode: number;

  /**
   * @example
   * ```ts
   * throw new DbgError("No such container: web", { hint: "List containers with: docker ps" });
   * ```
   */
  constructor(message: string, opts: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = "DbgError";
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? EXIT_DBG;
  }
}

/** A usage error: a bad flag or argument. */
export function usageError(message: string, hint = "See: dbg help"): DbgError {
  return new DbgError(message, { hint });
}

/** The target exists but is not running, so its namespaces cannot be joined. */
export function targetNotRunning(target: string, state: string, startHint: string): DbgError {
  return new DbgError(`Target ${target} is not running (state: ${state})`, {
    hint: `Start it first (${startHint}); dbg joins a running container's namespaces`,
  });
}

/** No container matched the user's reference (auto-detection looks on the next engine). */
export class NoSuchTarget extends DbgError {
  constructor(message: string, hint: string) {
    super(message, { hint });
    this.name = "NoSuchTarget";
  }
}

/** No container matched the user's reference. `running` lists what is there to pick from. */
export function noSuchTarget(target: string, running: string[], listHint: string): DbgError {
  const list = running.length ? `running: ${running.join(", ")}` : "no container is running";
  return new NoSuchTarget(
    `No such container: ${target} (${list})`,
    `Pass a running container's name or id (list them with: ${listHint})`,
  );
}

/**
 * The engine's socket cannot be used: `${where}: ${detail}`. Auto-detection reports `detail`
 * for each engine it could not ask.
 */
export class EngineUnreachable extends DbgError {
  readonly detail: string;
  /** Nothing listens there: no socket (`dbg sessions` and `dbg gc` pass over it quietly). */
  readonly absent: boolean;
  constructor(
    where: string,
    detail: string,
    opts: { hint: string; cause?: unknown; absent?: boolean },
  ) {
    super(`${where}: ${detail}`, opts);
    this.name = "EngineUnreachable";
    this.detail = detail;
    this.absent = opts.absent ?? opts.cause instanceof Deno.errors.NotFound;
  }
}

/** The debugger image is not available and could not be pulled. */
export function imageNotFound(image: string, detail: string, hint?: string): DbgError {
  return new DbgError(`Image ${image} not found: ${detail}`, {
    hint: hint ??
      "Check the name and tag, or pick an image from `dbg images` (use --image; --pull never uses local images only)",
  });
}

/**
 * The engine does not have the image locally (thrown by `createSidecar`). The lifecycle pulls
 * and retries once, like `docker run`, so the common case costs no extra request.
 */
export class ImageNotPresent extends DbgError {
  constructor(image: string, cause?: unknown) {
    super(`Image ${image} is not present`, { cause });
    this.name = "ImageNotPresent";
  }
}

/**
 * `remove()` could not remove the sidecar, and the adapter knows better than the lifecycle what
 * is left and what to do about it (a Kubernetes ephemeral container, which no API removes).
 */
export class LeftBehind extends DbgError {
  constructor(message: string, opts: { hint: string; cause?: unknown }) {
    super(message, opts);
    this.name = "LeftBehind";
  }
}

/** The registry refused the pull (auth or access). Never includes credentials. */
export function pullRefused(image: string, detail: string): DbgError {
  return new DbgError(`Pull of ${image} was refused: ${detail}`, {
    hint:
      "Log in to the registry (docker login <registry>) so ~/.docker/config.json has credentials, or use an image you can pull",
  });
}

/**
 * Render a DbgError (or anything else) as the lines dbg prints on stderr: the message and the
 * hint one line each. Their words may come from outside (an engine's or a registry's error), so
 * control characters become spaces.
 */
export function formatError(err: unknown, debug: boolean): string {
  if (err instanceof DbgError) {
    let out = `dbg: ${printable(err.message)}`;
    if (err.hint) out += `\nHint: ${printable(err.hint)}`;
    if (debug) {
      if (err.cause) out += `\nCause: ${describeCause(err.cause)}`;
      if (err.stack) out += `\n${err.stack}`;
    }
    return printableLines(out);
  }
  const msg = err instanceof Error ? err.message : String(err);
  let out = `dbg: Unexpected error: ${printable(msg)}`;
  if (debug && err instanceof Error && err.stack) out += `\n${err.stack}`;
  else out += "\nHint: Run again with --debug for details, and report it if it persists";
  return printableLines(out);
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  return String(cause);
}
