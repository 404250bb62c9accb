/**
 * The sidecar's entry script, shared by every runtime. It runs under the debugger image's
 * POSIX shell (BusyBox ash for the default image) as `sh -c SCRIPT dbg-entry [K=V…] -- [CMD…]`,
 * with its settings in `DBG_*` variables (set by plan.ts). The script itself is entry.sh, imported
 * as text so that it stays a shell file (and `deno compile` embeds it).
 *
 * How the no-trace chroot works (facts in ../shared/DESIGN.md):
 * - The entry shell finds the target's main process T (the PID hint, checked by cgroup), then
 *   starts a *keeper* (`sleep`) whose `/proc/<keeper>/root` stays the debugger image's root. From
 *   inside the target's root it is reached through the target's own /proc (same PID namespace).
 *   The keeper runs as the session's user, since reading /proc/<pid>/root needs the same uid.
 * - It replaces its environment with the target's live one (/proc/T/environ), puts the tool
 *   dirs on PATH after the target's, and runs `chroot /proc/T/root` as a child that enters the
 *   working dir, switches user (start-stop-daemon -c, numeric ids work) and runs the command.
 * - The entry shell stays the parent of everything and reaps it before it exits. Orphans would
 *   go to the target's PID 1, which rarely reaps, and stay as zombies in its namespace.
 * - On a TTY the command runs in the foreground, so Ctrl-C reaches it as SIGINT. Without a TTY it
 *   runs in the background, so that `wait` can be interrupted by a trap that forwards the
 *   signals dbg relays (background jobs ignore SIGINT, so SIGTERM ends them, and the exit code
 *   reports the signal dbg got).
 * - nix images: a temporary `/nix` link to the keeper's store, removed before exit.
 *
 * Nothing is written into the target in chroot, mount and plain modes.
 *
 * @module
 */

import script from "./entry.sh" with { type: "text" };

/** The entry script. Kept in one place so every runtime runs the same code. */
export const ENTRY_SCRIPT: string = script;
