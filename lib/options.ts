/**
 * The validated options of one `dbg <runtime>` run, and their validation. Pure: the CLI parser
 * hands raw values in, the lifecycle gets `DebugOptions` out.
 *
 * @module
 */

import { checkImageInput } from "../images/catalog.ts";
import type { AdapterSupports } from "./adapter.ts";
import { usageError } from "./errors.ts";

/** Target-shell modes; `auto` lets the plan pick. */
export const MODES = ["auto", "chroot", "mount", "plain"] as const;
export type Mode = typeof MODES[number];
/**
 * Security profiles (kubectl debug's names), on every runtime; `auto` is `general`, except on
 * Kubernetes, where it follows the namespace's Pod Security level.
 */
export const PROFILES = [
  "auto",
  "general",
  "baseline",
  "restricted",
  "netadmin",
  "sysadmin",
] as const;
export type Profile = typeof PROFILES[number];
export const PULL_POLICIES = ["missing", "always", "never"] as const;
export type PullPolicy = typeof PULL_POLICIES[number];

/** Options for one debugging session, runtime-independent. */
export interface DebugOptions {
  runtime: string;
  target: string;
  /** The image of an `image:REF` target, which is debugged through a throwaway container. */
  fromImage?: string;
  /** argv after `--` (empty: interactive shell). */
  command: string[];
  image?: string;
  pull: PullPolicy;
  mode: Mode;
  user?: string;
  env: string[];
  workdir?: string;
  privileged: boolean;
  name?: string;
  keep: boolean;
  dryRun: boolean;
  /** Allocate a TTY for the sidecar. */
  tty: boolean;
  /** Connect local stdin to the sidecar. */
  stdin: boolean;
  quiet: boolean;
  debug: boolean;
  /** Runtime connection (docker `-H`, containerd `--address`). */
  host?: string;
  /** containerd namespace and the Kubernetes pod namespace for POD/CONTAINER. */
  namespace?: string;
  podNamespace?: string;
  insecureRegistries: string[];
  /** The local $TERM, passed on with a TTY (the runtime's default is xterm). */
  term?: string;
  /** The security profile (see plan.ts PROFILE_CAPS). */
  profile: Profile;
  /** Kubernetes: kubeconfig file(s), context, start timeout (ms). */
  kubeconfig?: string;
  context?: string;
  timeoutMs?: number;
  /** Kubernetes: list dbg's containers in the pod instead of debugging. */
  sessions: boolean;
  /** Kubernetes: reattach to this dbg container. */
  attach?: string;
  /** Kubernetes: debug a copy of the pod. */
  copy: boolean;
  /** The network of a copy (Docker, containerd); none unless asked. */
  network?: string;
  /** Put the target's PATH after the tools' (chroot and mount modes). */
  targetPath: boolean;
}

/** Raw flag values as the CLI parser produced them. */
export interface RawOptions {
  image?: string;
  pull?: string;
  mode?: string;
  user?: string;
  env?: string[];
  workdir?: string;
  privileged?: boolean;
  name?: string;
  keep?: boolean;
  dryRun?: boolean;
  interactive?: boolean;
  /** true: -t; false: -T/--no-tty; undefined: decide from stdin. */
  tty?: boolean;
  quiet?: boolean;
  debug?: boolean;
  host?: string;
  namespace?: string;
  podNamespace?: string;
  insecureRegistry?: string[];
  kubeconfig?: string;
  context?: string;
  profile?: string;
  timeout?: string;
  sessions?: boolean;
  attach?: string;
  copy?: boolean;
  network?: string;
  targetPath?: boolean;
  /** Kubernetes: `-c NAME`, the same as TARGET/NAME. */
  container?: string;
}

/** What the options check needs to know about the local terminal. */
export interface LocalIo {
  stdinIsTerminal: boolean;
  /** The local $TERM. */
  term?: string;
  /** Defaults to stdinIsTerminal; a redirected stdout gets no TTY (no CR/LF in files). */
  stdoutIsTerminal?: boolean;
}

/**
 * A target of this form is an image, not a container: no container name or id, and no
 * Kubernetes name, holds a colon.
 */
export const IMAGE_PREFIX = "image:";
const IMAGE_HINT = "dbg docker image:REF debugs a throwaway container of an image";
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*(=|$)/;
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Validate raw flags into `DebugOptions`, rejecting flags the runtime does not support.
 *
 * TTY rule, docker's: a TTY comes with `-t`, or for the interactive shell (no command) when
 * local stdin and stdout are terminals, unless `-T`; a one-shot command keeps stdout and stderr
 * apart, and output redirected to a file gets no CR/LF. `-i` never implies a TTY. `-t` without a
 * terminal is an error. Stdin is connected with a TTY, with `-i`, and when no command is given
 * (so `echo 'ls /' | dbg docker app` runs the script).
 */
export function validateOptions(
  base: { runtime: string; target: string; command: string[] },
  raw: RawOptions,
  ctx: { io: LocalIo; supports: AdapterSupports; env?: (name: string) => string | undefined },
): DebugOptions {
  const { runtime } = base;
  /** A bad value, with the runtime's help as the hint. */
  const usage = (message: string, hint = helpHint(runtime)) => usageError(message, hint);
  if (!base.target) throw usage(`${dbgWord(runtime)}: missing the target container`);
  // kubectl's -c NAME: the container part of POD/NAME.
  if (raw.container !== undefined) {
    if (!NAME_RE.test(raw.container)) throw usage(`Bad --container "${raw.container}"`);
    base = { ...base, target: `${base.target}/${raw.container}` };
  }
  const fromImage = base.target.startsWith(IMAGE_PREFIX)
    ? base.target.slice(IMAGE_PREFIX.length)
    : undefined;
  if (fromImage !== undefined) {
    if (!ctx.supports.images) {
      throw usageError(
        `${dbgWord(runtime)} cannot debug an image (${base.target})`,
        IMAGE_HINT,
      );
    }
    const bad = checkImageInput(fromImage);
    if (bad || fromImage.startsWith("nix:")) {
      throw usageError(
        `Bad image target "${base.target}": ${bad ?? "expected image:REF"}`,
        IMAGE_HINT,
      );
    }
  }
  const pull = oneOf("--pull", raw.pull ?? "missing", PULL_POLICIES, runtime);
  const mode = oneOf("--mode", raw.mode ?? "auto", MODES, runtime);
  if (raw.image !== undefined) {
    const bad = checkImageInput(raw.image);
    if (bad) throw usageError(bad, "See the catalog with: dbg images");
  }
  const env: string[] = [];
  for (const e of raw.env ?? []) {
    if (!ENV_RE.test(e)) throw usage(`Bad --env "${e}": expected NAME=VALUE or NAME`);
    // The entry script keeps its own state in _dbg_* variables (lib/entry.sh).
    if (e.startsWith("_dbg_")) throw usage(`Bad --env "${e}": _dbg_ names are dbg's own`);
    // NAME alone passes this process's value, as docker does; an unset NAME is left out.
    const value = e.includes("=") ? e : ctx.env?.(e);
    if (value !== undefined) env.push(e.includes("=") ? e : `${e}=${value}`);
  }
  if (raw.name !== undefined && !NAME_RE.test(raw.name)) {
    throw usage(`Bad --name "${raw.name}": use letters, digits, "_", "." and "-"`);
  }
  if (raw.user !== undefined && !/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(raw.user)) {
    throw usage(`Bad --user "${raw.user}": expected USER[:GROUP] or UID[:GID]`);
  }
  if (raw.network !== undefined && !NAME_RE.test(raw.network)) {
    throw usage(`Bad --network "${raw.network}": expected none, host or a network's name`);
  }
  if (raw.workdir !== undefined && !raw.workdir.startsWith("/")) {
    throw usage(`Bad --workdir "${raw.workdir}": it must be an absolute path`);
  }
  unsupported(ctx.supports.keep || !raw.keep, "--keep", runtime);
  unsupported(ctx.supports.privileged || !raw.privileged, "--privileged", runtime);
  unsupported(ctx.supports.name || raw.name === undefined, "--name", runtime);
  unsupported(ctx.supports.copy || !raw.copy, "--copy", runtime);
  if (raw.tty === true && !ctx.io.stdinIsTerminal) {
    throw usageError(
      "The input device is not a TTY (-t needs a terminal)",
      "Drop -t, or use -i to pipe input: echo data | dbg … -i -- cmd",
    );
  }
  const profile = oneOf("--profile", raw.profile ?? "auto", PROFILES, runtime);
  if (raw.privileged && (profile === "baseline" || profile === "restricted")) {
    throw usageError(
      `--privileged contradicts --profile ${profile}`,
      "Drop one of them (--profile sysadmin is privileged too)",
    );
  }
  const timeoutMs = raw.timeout === undefined ? undefined : parseDuration(raw.timeout, runtime);
  if (raw.attach !== undefined && !/^dbg-[a-z0-9.-]+$/.test(raw.attach)) {
    throw usageError(
      `Bad --attach "${raw.attach}": expected the name of a dbg container (dbg-…)`,
      `List them with: dbg ${runtime} ${base.target} --sessions`,
    );
  }
  // As docker: a TTY with -t, or for the interactive shell (no command) at a terminal.
  const tty = raw.tty ??
    (base.command.length === 0 && ctx.io.stdinIsTerminal && (ctx.io.stdoutIsTerminal ?? true));
  const stdin = tty || !!raw.interactive || base.command.length === 0;
  return {
    runtime,
    target: base.target,
    ...(fromImage !== undefined ? { fromImage } : {}),
    command: base.command,
    image: raw.image,
    pull,
    mode,
    user: raw.user,
    env,
    workdir: raw.workdir,
    privileged: !!raw.privileged,
    name: raw.name,
    keep: !!raw.keep,
    dryRun: !!raw.dryRun,
    tty,
    stdin,
    quiet: !!raw.quiet,
    debug: !!raw.debug,
    host: raw.host,
    namespace: raw.namespace,
    podNamespace: raw.podNamespace,
    insecureRegistries: raw.insecureRegistry ?? [],
    term: tty ? ctx.io.term : undefined,
    kubeconfig: raw.kubeconfig,
    context: raw.context,
    profile,
    timeoutMs,
    sessions: !!raw.sessions,
    attach: raw.attach,
    copy: !!raw.copy,
    ...(raw.network !== undefined ? { network: raw.network } : {}),
    targetPath: !!raw.targetPath,
  };
}

/** `90s`, `2m`, `1m30s`, `500ms` or plain seconds → milliseconds. */
export function parseDuration(text: string, runtime = "k8s"): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw usageError(
      `Bad --timeout "${text}": expected a duration such as 90s or 2m`,
      helpHint(runtime),
    );
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]], 0);
}

function oneOf<T extends string>(
  flag: string,
  value: string,
  allowed: readonly T[],
  runtime: string,
): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw usageError(
    `Bad ${flag} "${value}": expected one of ${allowed.join(", ")}`,
    helpHint(runtime),
  );
}

function unsupported(ok: boolean, flag: string, runtime: string): void {
  if (!ok) {
    throw usageError(`${flag} is not supported for the ${runtime} runtime`, helpHint(runtime));
  }
}

/** Where a runtime's flags are listed. */
function helpHint(runtime: string): string {
  return `See: ${dbgWord(runtime)} --help`;
}

/** `dbg docker`, or `dbg` alone when the runtime is detected. */
function dbgWord(runtime: string): string {
  return runtime ? `dbg ${runtime}` : "dbg";
}
