/**
 * The debug plan: pure data computed from the options, the target's facts and the image's
 * catalog entry. Every runtime gets the same plan; `--dry-run` prints it.
 *
 * @module
 */

import type { ImageChoice } from "../images/catalog.ts";
import type { TargetFacts } from "./adapter.ts";
import { ENTRY_SCRIPT } from "./entry.ts";
import type { DebugOptions, Profile } from "./options.ts";

/** The target-shell mode actually used. */
export type ShellMode = "chroot" | "mount" | "plain";

/** Everything a runtime needs to create the sidecar, and nothing it must decide itself. */
export interface DebugPlan {
  runtime: string;
  /** Session id: names and labels the sidecar. */
  runId: string;
  target: { id: string; name: string; pid: number };
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
    capAdd: string[];
    privileged: boolean;
    /** Kubernetes: the security profile in effect (kubectl debug's names); see effectiveProfile. */
    profile?: Exclude<Profile, "auto">;
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
  /** The user's command (empty: interactive shell). */
  command: string[];
  keep: boolean;
  /** The one-line banner (printed unless -q). */
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
 * (privileged), and everything else gets plain.
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
  if (image.custom) {
    return {
      mode: "plain",
      reason: `${image.ref} is not in the catalog, so its tools may be dynamically linked` +
        " (--mode chroot to try)",
    };
  }
  return { mode: "plain", reason: `${image.ref} has dynamically linked tools` };
}

/**
 * The Kubernetes security profile in effect: `--profile`, where `auto` follows the namespace's
 * Pod Security level (restricted → restricted, baseline → baseline, else general, kubectl's
 * default). Undefined on runtimes without profiles.
 */
export function effectiveProfile(
  opts: Pick<DebugOptions, "profile">,
  facts: Pick<TargetFacts, "security">,
): Exclude<Profile, "auto"> | undefined {
  if (!opts.profile) return undefined;
  if (opts.profile !== "auto") return opts.profile;
  const psa = facts.security?.psa;
  return psa === "restricted" ? "restricted" : psa === "baseline" ? "baseline" : "general";
}

/**
 * When the sidecar may not run as root, the user it runs as and why: the restricted profile,
 * a pod that requires runAsNonRoot, or baseline (no SYS_PTRACE) with a target of another uid,
 * whose files only that uid can reach. The user's `-u` wins if it is not root; otherwise the
 * target's uid (which can read the target's root), or 65534 when it is unknown.
 */
export function nonRootConstraint(
  profile: Exclude<Profile, "auto"> | undefined,
  facts: Pick<TargetFacts, "security" | "user">,
  user?: string,
): { user: string; reason: string } | undefined {
  const uid = facts.security?.uid;
  const target = !runsAsRoot(facts.user) ? facts.user : uid ? String(uid) : "65534";
  const pick = user && !runsAsRoot(user) ? user : target;
  if (profile === "restricted") {
    return { user: pick, reason: "the restricted profile runs as non-root" };
  }
  if (facts.security?.runAsNonRoot) {
    return { user: pick, reason: "the pod requires runAsNonRoot" };
  }
  if (profile === "baseline" && uid && !runsAsRoot(facts.user)) {
    return { user: pick, reason: "baseline allows no SYS_PTRACE, so dbg runs as the target's uid" };
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
  const forced = nonRootConstraint(profile, facts, opts.user);
  let { mode, reason } = chooseMode(opts, facts, image);
  if (forced && mode !== "plain") {
    mode = "plain";
    reason = `${forced.reason}, and chroot needs root`;
  } else if (forced) reason = `${reason}; ${forced.reason}`;
  const privileged = opts.privileged || profile === "sysadmin";
  const targetIsRoot = runsAsRoot(facts.user);
  // In plain mode the user's -u is the sidecar's own user; in chroot/mount the sidecar is root
  // (chroot needs it) and the entry script switches users inside the chroot.
  const sidecarUser = forced ? forced.user : mode === "plain" ? opts.user : "0";
  const sidecarIsRoot = sidecarUser === undefined || runsAsRoot(sidecarUser);
  // Reading /proc/T/root of a process of another uid needs CAP_SYS_PTRACE (a non-root sidecar
  // gets no capabilities, so adding it there would be noise). Pod Security baseline and
  // restricted forbid it.
  const strict = profile === "baseline" || profile === "restricted";
  const needPtrace = !privileged && sidecarIsRoot && !targetIsRoot && !strict;
  // Mount mode mounts inside the sidecar's own mount namespace: that takes SYS_ADMIN, and
  // nothing more (--privileged implies it).
  const capAdd = [
    ...(needPtrace ? ["SYS_PTRACE"] : []),
    ...(mode === "mount" && !privileged ? ["SYS_ADMIN"] : []),
    ...(profile === "netadmin" ? ["NET_ADMIN", "NET_RAW"] : []),
  ];
  const name = opts.name ?? `dbg-${runId}`;
  const env = [
    `DBG_MODE=${mode}`,
    `DBG_PID=${facts.pid}`,
    `DBG_TARGET_ID=${facts.id}`,
    `DBG_WORKDIR=${opts.workdir ?? (mode === "plain" ? "" : facts.cwd || "/")}`,
    `DBG_SHELL=${image.shell}`,
    `DBG_TOOLS=${image.toolDirs.join(":")}`,
    `DBG_USER=${mode === "plain" ? "" : opts.user ?? ""}`,
    `DBG_NIX=${image.nix ? 1 : 0}`,
    `DBG_QUIET=${opts.quiet ? 1 : 0}`,
    `DBG_PRIVILEGED=${opts.privileged ? 1 : 0}`,
    `DBG_TTY=${opts.tty ? 1 : 0}`,
    ...(opts.term ? [`TERM=${opts.term}`] : []),
  ];
  // The script travels in the environment, so `ps` in the sidecar shows a short command line.
  env.push(`${ENTRY_VAR}=${ENTRY_SCRIPT}`);
  const argv = [
    "/bin/sh",
    "-c",
    `eval "$${ENTRY_VAR}"`,
    "dbg-entry",
    ...opts.env,
    "--",
    ...opts.command,
  ];
  return {
    runtime: opts.runtime,
    runId,
    target: { id: facts.id, name: facts.name, pid: facts.pid },
    image: { ref: image.ref, alias: image.name, static: image.static, nix: image.nix },
    pull: opts.pull,
    mode,
    modeReason: reason,
    sidecar: {
      name,
      labels: { "dbg.session": runId, "dbg.target": facts.id },
      user: sidecarUser,
      capAdd,
      privileged,
      ...(profile ? { profile } : {}),
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
    command: opts.command,
    keep: opts.keep,
    banner: opts.attach
      ? `dbg: reattaching to ${opts.attach} (press Enter if no prompt shows)`
      : banner(mode, reason, facts, image),
  };
}

function banner(mode: ShellMode, reason: string, facts: TargetFacts, image: ImageChoice): string {
  const where = mode === "plain"
    ? `the target's filesystem is under /proc/<pid>/root ($DBG_TARGET_ROOT)`
    : `/ is ${facts.name}'s filesystem, ${image.ref} tools on PATH after the target's`;
  return `dbg: ${mode} mode (${reason}): ${where}`;
}

/** The plan as shown by `--dry-run`: the entry script is summarised, not dumped. */
export function planForDisplay(plan: DebugPlan): unknown {
  const env = plan.sidecar.env.map((e) =>
    e.startsWith(`${ENTRY_VAR}=`) ? `${ENTRY_VAR}=<dbg entry script, lib/entry.sh>` : e
  );
  return { ...plan, sidecar: { ...plan.sidecar, env } };
}
