/**
 * The sidecar's entry script, shared by every runtime. It runs under the debugger image's
 * POSIX shell (BusyBox ash for the default image) as
 * `sh -c 'eval "$DBG_ENTRY"' dbg-helper -- [CMD…]`, with its settings, the -e values among them,
 * in `DBG_*` variables (set by plan.ts). The script itself is entry.sh, imported as text so
 * that it stays a shell file (and `deno compile` embeds it).
 *
 * How the no-trace chroot works (facts in ../shared/DESIGN.md, departures in entry.sh):
 * - The entry shell finds the target's main process T (the PID hint, checked by cgroup, else
 *   searched by cgroup). It never leaves the debugger image's root, so `/proc/<entry>/root` is
 *   that root, reached from inside the target's root through the target's own /proc (same PID
 *   namespace). With -u a *keeper* (`sleep`) runs as that user, since reading /proc/<pid>/root
 *   takes the same uid and gid.
 * - Without the right to read /proc/T/root (no SYS_PTRACE, another uid), it goes plain as the
 *   target's live ids when the plan allows it, else it names the flag that would read it.
 * - An image outside the catalog is probed: chroot when its shell's ELF has no interpreter.
 * - The child that runs the command takes the target's live environment (/proc/T/environ), less
 *   what steers a shell or the loader, sets PATH to the tool dirs (the target's after them with
 *   --target-path), adds the -e values, and execs `nsenter -r/proc/T/root
 *   -w<dir> [-S uid -G gid]`, which enters the target's root and working dir, switches user by
 *   number (no passwd entry needed) and execs the command under its own name.
 * - The entry shell stays the parent of everything and reaps it before it exits. Orphans would
 *   go to the target's PID 1, which rarely reaps, and stay as zombies in its namespace.
 * - On a TTY the command is a foreground job (job control), so Ctrl-C and Ctrl-Z work as at a
 *   prompt; dbg ends such a session with SIGHUP to every process of the sidecar, as a closed
 *   terminal would (the entry shell cannot run traps while the job runs). Without a TTY the
 *   command runs in the background, so that `wait` can be interrupted by a trap that forwards
 *   the signals dbg relays (background jobs ignore SIGINT, so SIGTERM ends them, and the exit
 *   code reports the signal dbg got).
 * - Mount mode enters a private copy of the target's mount namespace (nsenter, then unshare).
 * - nix images: a temporary `/nix` link to the image's store, removed before exit.
 *
 * Nothing is written into the target in chroot, mount and plain modes.
 *
 * @module
 */

import script from "./entry.sh" with { type: "text" };

/**
 * The entry script, without its comment lines, blank lines and indentation (entry.sh has no
 * string or here-document that holds such a line): 13 KB instead of 22. It rides in every
 * sidecar's environment, and on Kubernetes in the pod's spec once per ephemeral container, so in
 * every answer and watch event about the pod; and the shell parses it at every start. Kept in
 * one place so every runtime runs the same code.
 */
export const ENTRY_SCRIPT: string = script
  .split("\n")
  .map((line) => line.trimStart())
  .filter((line) => line && !line.startsWith("#"))
  .join("\n") + "\n";
