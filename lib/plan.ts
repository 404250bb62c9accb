/**
 * The debug plan: pure data computed from the options, the target's facts and the image's
 * catalog entry. Every runtime gets the same plan; `--dry-run` prints it.
 *
 * @module
 */

import type { ImageChoice } from "../images/catalog.ts";
import type { TargetFacts } from "./adapter.ts";
import { ENTRY_SCRIPT } from "./entry.ts";
import { usageError } from "./errors.ts";
import { printable } from "./printable.ts";
import type { DebugOptions, Profile } from "./options.ts";

/**
 * The target-shell mode actually used. `probe` leaves the choice between chroot and plain to
 * the entry script, which checks whether the image's shell runs in the target's root.
 */
export type ShellMode = "chroot" | "mount" | "plain" | "probe";

/** A security profile in effect (kubectl debug's names, `auto` resolved). */
export type EffectiveProfile = Exclude<Profile, "auto">;

/** Everything a runtime needs to create the sidecar, and nothing it must decide itself. */
export interface DebugPlan {
  runtime: string;
  /** Session id: names and labels the sidecar. */
  runId: string;
  /** What the sidecar joins: the target, or its copy (then `id` is the copy's name). */
  target: { id: string; name: string; pid: number };
  /**
   * A target that is not running, or an image, is debugged through a throwaway copy, which the
   * session makes before the sidecar and removes after it (see `RuntimeAdapter.createCopy`).
   */
  copy?: {
    name: string;
    /** The original: a container's id, or an image's. */
    source: { kind: "container" | "image"; id: string };
    /** Whether the copy's root is read-only, as the original's. */
    readOnly: boolean;
    /** Its network: `none` unless asked (`--network`). */
    network: string;
    /** The original's ENTRYPOINT + CMD, in the session as `$DBG_ENTRYPOINT`. */
    entrypoint: string[];
    /** The one line that says what the session runs in (not with -q). */
    banner: string;
  };
  image: { ref: string; alias: string; static: boolean; nix: boolean };
  pull: DebugOptions["pull"];
  mode: ShellMode;
  /** Why the mode was chosen, for the banner. */
  modeReason: string;
  sidecar: {
    name: string;
    labels: Record<string, string>;
    /** The sidecar's process user; undefined keeps root. */
    user?: string;
    /** Capabilities added to, and dropped from, the runtime's defaults. */
    capAdd: string[];
    capDrop: string[];
    /** No privilege gain through setuid files or file capabilities (restricted). */
    noNewPrivileges: boolean;
    privileged: boolean;
    /** The security profile in effect (kubectl debug's names); see effectiveProfile. */
    profile: EffectiveProfile;
    /** Kubernetes: reattach to this existing dbg container instead of adding one. */
    existing?: string;
    join: { pid: true; net: true; ipc: boolean; ipcHost: boolean };
    tty: boolean;
    stdin: boolean;
    /** Full argv of the sidecar's main process (entrypoint reset). */
    argv: string[];
    /** Environment of the sidecar's main process (the entry script's settings). */
    env: string[];
  };
  /**
   * Why the target's processes could open the session's through /proc, or "" (see
   * `exposure`): printed with the banner.
   */
  exposure: string;
  /** The user's command (empty: interactive shell). */
  command: string[];
  keep: boolean;
  /**
   * The one-line banner, printed by dbg unless -q. Empty when the entry script decides the mode
   * (probe, or a fallback to plain mode) and prints the line itself.
   */
  banner: string;
}

/** The variable that carries the entry script into the sidecar. */
export const ENTRY_VAR = "DBG_ENTRY";

/** Session ids: 8 hex characters. */
export function newRunId(): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** True when the user runs as uid 0 (empty means the image default, which is root here). */
export function runsAsRoot(user: string): boolean {
  const u = user.split(":")[0];
  return u === "" || u === "0" || u === "root";
}

/**
 * Pick the target-shell mode: an explicit `--mode` wins; otherwise static tools get the no-trace
 * chroot, nix tools get chroot with a temporary /nix link (writable target) or mount
 * (privileged), catalog images with dynamic tools get plain, and images outside the catalog are
 * probed by the entry script.
 */
export function chooseMode(
  opts: Pick<DebugOptions, "mode" | "privileged">,
  facts: Pick<TargetFacts, "readOnlyRootfs">,
  image: Pick<ImageChoice, "ref" | "static" | "nix" | "custom">,
): { mode: ShellMode; reason: string } {
  if (opts.mode !== "auto") return { mode: opts.mode, reason: "--mode" };
  if (image.nix) {
    if (!facts.readOnlyRootfs) {
      return { mode: "chroot", reason: "nix tools, via a temporary /nix link in the target" };
    }
    if (opts.privileged) return { mode: "mount", reason: "nix tools on a read-only target" };
    return {
      mode: "plain",
      reason: "nix tools need /nix and the target is read-only (--privileged allows mount mode)",
    };
  }
  if (image.static) return { mode: "chroot", reason: `${image.ref} has static tools` };
  if (image.custom) return { mode: "probe", reason: `${image.ref} is not in the catalog` };
  return { mode: "plain", reason: `${image.ref} has dynamically linked tools` };
}

/**
 * The security profile in effect: `--profile`, where `auto` follows the namespace's Pod
 * Security level on Kubernetes (restricted → restricted, baseline → baseline) and is `general`
 * everywhere else, as in kubectl debug.
 */
export function effectiveProfile(
  opts: Pick<DebugOptions, "profile">,
  facts: Pick<TargetFacts, "security">,
): EffectiveProfile {
  if (opts.profile !== "auto") return opts.profile;
  const psa = facts.security?.psa;
  return psa === "restricted" ? "restricted" : psa === "baseline" ? "baseline" : "general";
}

/**
 * What each profile adds to a root sidecar. SYS_PTRACE opens /proc/<pid>/root of a target of
 * any uid (and lets strace and gdb attach); baseline and restricted do without it.
 */
export const PROFILE_CAPS: Record<EffectiveProfile, readonly string[]> = {
  general: ["SYS_PTRACE"],
  baseline: [],
  restricted: [],
  netadmin: ["SYS_PTRACE", "NET_ADMIN", "NET_RAW"],
  sysadmin: [],
};

/** Whether a profile reads a target of any uid (SYS_PTRACE, or everything with sysadmin). */
function readsAnyUid(profile: EffectiveProfile): boolean {
  return profile === "sysadmin" || PROFILE_CAPS[profile].includes("SYS_PTRACE");
}

/** `TargetFacts.caps` from a runtime's lists, whose names may be in any case, with CAP_ or not. */
export function capsFacts(add: string[] = [], drop: string[] = []): TargetFacts["caps"] {
  const name = (c: string) => c.toUpperCase().replace(/^CAP_/, "");
  return { add: add.map(name), drop: drop.map(name) };
}

/**
 * The note a session gets when the target's processes could open the session's through /proc
 * (their open files, the terminal among them; their memory; their root, the debugger image), or
 * "" when the kernel stops them. The kernel lets a process open another's when it holds
 * SYS_PTRACE, or when both run as the same uid and the opener holds every capability the other
 * holds. So a root session is safe from any target without SYS_PTRACE while it holds one
 * capability the target lacks: SYS_PTRACE itself in the general, netadmin and sysadmin profiles.
 */
export function exposure(
  facts: Pick<TargetFacts, "name" | "privileged" | "caps" | "copy">,
  sidecar: { root: boolean; privileged: boolean; capAdd: string[] },
): string {
  // A copy runs dbg's keeper, not the target's code; a node's root can reach anything anyway.
  if (facts.copy) return "";
  const add = facts.caps?.add ?? [];
  const note = (why: string, fix = "") =>
    `dbg: note: ${why}, so ${facts.name}'s processes can open this session's through /proc ` +
    `(files, terminal, memory)${fix}`;
  if (facts.privileged || add.includes("ALL") || add.includes("SYS_PTRACE")) {
    return note(`${facts.name} holds SYS_PTRACE`);
  }
  if (!sidecar.root) return note("this session runs as a user without capabilities");
  const holdsMore = sidecar.privileged || (facts.caps?.drop.length ?? 0) > 0 ||
    sidecar.capAdd.some((c) => !add.includes(c));
  return holdsMore
    ? ""
    : note(`this session holds no capability ${facts.name} lacks`, "; --profile general adds one");
}

/** A numeric `UID:GID` (both are needed to read the target's root), else undefined. */
function numericIds(user: string): string | undefined {
  return /^\d+:\d+$/.test(user) ? user : undefined;
}

/**
 * When the sidecar may not run as root, or root could not read the target's files, the user it
 * runs as and why:
 * - the restricted profile, or a pod that requires runAsNonRoot: the user's `-u` if it is not
 *   root, else the target's ids (which can read the target's root), else 65534;
 * - a profile without SYS_PTRACE and a target known to run as another uid: that uid, since
 *   reading /proc/<pid>/root of another uid takes SYS_PTRACE (or the same uid and gid), unless
 *   a mode was asked for.
 */
export function nonRootConstraint(
  profile: EffectiveProfile,
  facts: Pick<TargetFacts, "security" | "user">,
  opts: Pick<DebugOptions, "user" | "mode">,
): { user: string; reason: string } | undefined {
  const user = opts.user;
  const known = numericIds(facts.user);
  const target = known && !runsAsRoot(known) ? known : undefined;
  const pick = user && !runsAsRoot(user) ? user : target ?? "65534";
  if (profile === "restricted") {
    return { user: pick, reason: "the restricted profile runs as non-root" };
  }
  if (facts.security?.runAsNonRoot) {
    return { user: pick, reason: "the pod requires runAsNonRoot" };
  }
  // A strategy, not a rule: an explicit --mode keeps root (and fails naming what would work).
  if (target && !readsAnyUid(profile) && opts.mode === "auto") {
    return {
      user: user && !runsAsRoot(user) ? user : target,
      reason: `${profile} adds no SYS_PTRACE, so dbg runs as the target's ids ${target}`,
    };
  }
  return undefined;
}

/** Build the plan. Pure. */
export function makePlan(
  opts: DebugOptions,
  facts: TargetFacts,
  image: ImageChoice,
  runId: string = newRunId(),
): DebugPlan {
  const profile = effectiveProfile(opts, facts);
  const privileged = opts.privileged || profile === "sysadmin";
  const forced = privileged ? undefined : nonRootConstraint(profile, facts, opts);
  let { mode, reason } = chooseMode(opts, facts, image);
  if (forced && mode !== "plain") {
    mode = "plain";
    reason = `${forced.reason}, and chroot needs root`;
  } else if (forced) reason = `${reason}; ${forced.reason}`;
  // The sidecar does not join a user namespace: ids inside the target's mean others outside.
  if (facts.userNamespace) {
    reason =
      `${reason}; the target is in a user namespace of its own (uid map ${facts.userNamespace})`;
  }
  // In plain mode the user's -u is the sidecar's own user; in chroot/mount the sidecar is root
  // (chroot needs it) and the entry script switches users as it enters the target's root.
  const sidecarUser = forced ? forced.user : mode === "plain" ? opts.user : "0";
  const sidecarIsRoot = sidecarUser === undefined || runsAsRoot(sidecarUser);
  // A non-root sidecar gets no capabilities from the runtime, so adding some would be noise.
  // Mount mode mounts inside the sidecar's own mount namespace: that takes SYS_ADMIN.
  const capAdd = privileged || !sidecarIsRoot ? [] : [
    ...PROFILE_CAPS[profile],
    ...(mode === "mount" ? ["SYS_ADMIN"] : []),
  ];
  // Without SYS_PTRACE a root sidecar cannot read the root of a target that dropped to another
  // uid: unless the mode was asked for, the entry script then runs plain as the target's ids.
  const fallback = sidecarIsRoot && !privileged && opts.mode === "auto" &&
    mode !== "plain" && !readsAnyUid(profile);
  const name = opts.name ?? `dbg-${runId}`;
  if (opts.network !== undefined && !facts.copy) {
    throw usageError(
      `--network is for a copy of a target that does not run; ${facts.name} runs`,
      "dbg shares a running target's network: drop --network",
    );
  }
  const copy = facts.copy && {
    name: `${name}-copy`,
    source: { kind: opts.fromImage ? "image" as const : "container" as const, id: facts.id },
    readOnly: facts.readOnlyRootfs,
    network: opts.network ?? "none",
    entrypoint: facts.copy.entrypoint,
    banner: facts.copy.banner ??
      `dbg: ${facts.name} ${facts.copy.ended}: this session runs in a throwaway copy${
        facts.copy.lost ? ` without ${facts.copy.lost}` : ""
      }; changes are discarded${facts.copy.volumes ? ", except in its volumes" : ""}`,
  };
  // When the entry script has the last word, it prints the banner: this one if the planned
  // mode holds, its own line if it goes plain.
  const entryDecides = !opts.attach && (mode === "probe" || fallback);
  const planned = mode === "probe"
    ? banner(
      "chroot",
      `${image.ref} is not in the catalog, and its shell is static`,
      facts,
      opts.targetPath,
    )
    : banner(mode, reason, facts, opts.targetPath);
  const env = [
    `DBG_MODE=${mode}`,
    `DBG_FALLBACK=${fallback ? 1 : 0}`,
    `DBG_PROFILE=${profile}`,
    `DBG_PID=${facts.pid}`,
    `DBG_ROOT_PATH=${facts.rootPath ?? ""}`,
    // (A copy has a PID namespace of its own: its PID 1 is the one to find.)
    `DBG_TARGET_ID=${copy ? "" : facts.id}`,
    `DBG_WORKDIR=${opts.workdir ?? (mode === "plain" ? "" : facts.cwd || "/")}`,
    `DBG_WORKDIR_FLAG=${opts.workdir === undefined ? 0 : 1}`,
    `DBG_IMAGE=${image.ref}`,
    `DBG_SHELL=${image.shell}`,
    `DBG_TOOLS=${image.toolDirs.join(":")}`,
    `DBG_USER=${mode === "plain" ? "" : opts.user ?? ""}`,
    `DBG_TARGET_PATH=${opts.targetPath ? 1 : 0}`,
    `DBG_NIX=${image.nix ? 1 : 0}`,
    `DBG_QUIET=${opts.quiet ? 1 : 0}`,
    `DBG_PRIVILEGED=${opts.privileged ? 1 : 0}`,
    `DBG_TTY=${opts.tty ? 1 : 0}`,
    // The entry script prints it as the session's output, which dbg passes on as is.
    `DBG_BANNER=${entryDecides ? printable(planned) : ""}`,
    ...(opts.term ? [`TERM=${opts.term}`] : []),
    // The -e values travel here, not in an argv, which anyone in the target could read: the
    // entry script hands them to the command (a copy's entrypoint first).
    ...envValues([
      ...(copy ? [`DBG_ENTRYPOINT=${shellJoin(copy.entrypoint)}`] : []),
      ...opts.env,
    ]),
  ];
  // The script travels in the environment, so `ps` in the sidecar shows a short command line.
  env.push(`${ENTRY_VAR}=${ENTRY_SCRIPT}`);
  const argv = [
    "/bin/sh",
    "-c",
    `eval "$${ENTRY_VAR}"`,
    "dbg-helper",
    "--",
    ...opts.command,
  ];
  return {
    runtime: opts.runtime,
    runId,
    target: { id: copy ? copy.name : facts.id, name: facts.name, pid: facts.pid },
    ...(copy ? { copy } : {}),
    image: { ref: image.ref, alias: image.name, static: image.static, nix: image.nix },
    pull: opts.pull,
    mode,
    modeReason: reason,
    sidecar: {
      name,
      labels: { "dbg.session": runId, "dbg.target": facts.id },
      user: sidecarUser,
      capAdd,
      capDrop: profile === "restricted" ? ["ALL"] : [],
      noNewPrivileges: profile === "restricted",
      privileged,
      profile,
      ...(opts.attach ? { existing: opts.attach } : {}),
      join: {
        pid: true,
        net: true,
        ipc: facts.ipc === "shareable" || facts.ipc === "host",
        ipcHost: facts.ipc === "host",
      },
      tty: opts.tty,
      stdin: opts.stdin,
      argv,
      env,
    },
    exposure: exposure(facts, { root: sidecarIsRoot, privileged, capAdd }),
    command: opts.command,
    keep: opts.keep,
    banner: opts.attach
      ? `dbg: reattaching to ${opts.attach} (press Enter if no prompt shows)`
      : entryDecides
      ? ""
      : planned,
  };
}

/** `NAME=VALUE` settings as the entry script takes them: DBG_NENV, then DBG_E1…DBG_En. */
function envValues(values: string[]): string[] {
  return [`DBG_NENV=${values.length}`, ...values.map((kv, i) => `DBG_E${i + 1}=${kv}`)];
}

/** argv as one line of sh that runs it: words quoted only where they need it. */
export function shellJoin(argv: string[]): string {
  return argv.map((a) =>
    /^[A-Za-z0-9_\/.,:=+@%-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`
  )
    .join(" ");
}

function banner(
  mode: ShellMode,
  reason: string,
  facts: TargetFacts,
  targetPath: boolean,
): string {
  const where = mode === "plain"
    ? `${facts.name}'s files are in $DBG_TARGET_ROOT`
    : `/ is ${facts.name}'s${targetPath ? ", and PATH has its programs too" : ""}`;
  return `dbg: ${mode} mode (${reason}): ${where}`;
}

/** The plan as shown by `--dry-run`: the entry script is summarised, not dumped. */
export function planForDisplay(plan: DebugPlan): unknown {
  const env = plan.sidecar.env.map((e) =>
    e.startsWith(`${ENTRY_VAR}=`) ? `${ENTRY_VAR}=<dbg entry script, lib/entry.sh>` : e
  );
  return { ...plan, sidecar: { ...plan.sidecar, env } };
}
