/**
 * Signals inside a sidecar, for runtimes that cannot signal every process of a container
 * themselves (Docker signals only its main process; Kubernetes none): scripts to run there by
 * exec. Also dbg's lifeline, the exec that ends a session once dbg is gone.
 *
 * @module
 */

/** The name the lifeline runs under (its `$0`), which `ps` shows. */
export const LIFELINE_NAME = "dbg-lifeline";
/** How often dbg writes to its lifeline. */
export const LIFELINE_BEAT_MS = 10_000;
/** How long the lifeline waits for the next beat before it takes dbg for gone. */
export const LIFELINE_GRACE_S = 25;

/**
 * The processes of a session as "PID PPID" lines, for scripts run by exec in the sidecar's
 * container: the entry shell and what descends from it. The entry shell is the oldest process in
 * this container's cgroup and mount namespace whose parent is outside the PID namespace (PPid
 * 0); the execs dbg runs beside it (this script, the lifeline, a hangup) are younger, so they
 * never signal one another. The cgroup alone would not do: it may be the target's too (rootless
 * Podman on cgroup v1 puts every container in its service's), and the target shares the PID
 * namespace. (In /proc/PID/stat, after the command's name in parentheses, field 2 is the PPid
 * and field 20 the start time.)
 */
const SESSION = `c=$(cat /proc/self/cgroup)
session() {
  for d in /proc/[0-9]*; do
    [ "$(cat "$d/cgroup" 2>/dev/null)" = "$c" ] || continue
    m=0; ! [ "$d/ns/mnt" -ef /proc/$$/ns/mnt ] || m=1
    s=$(cat "$d/stat" 2>/dev/null) && echo "$m $s"
  done | awk '{ m = $1; p = $2; sub(/^.*\\) /, ""); pp[p] = $2
      if (m && $2 == 0 && (e == "" || $20 + 0 < t || ($20 + 0 == t && p + 0 < e + 0))) { e = p; t = $20 + 0 } }
    END { for (p in pp) { q = p; n = 0; while ((q in pp) && pp[q] != 0 && n++ < 4096) q = pp[q]
      if (e != "" && q == e) print p, pp[p] } }'
}`;

/**
 * A POSIX sh script, run by exec in the sidecar's container, that sends `sig` to the session's
 * entry shell (the container's main process: PPid 0, as the PID namespace's parent is outside
 * it), or with `all` to every process of the session.
 */
export function killScript(sig: string, all: boolean): string {
  return `${SESSION}
kill -${sig} $(session | awk '${all ? "" : "$2 == 0 "}{ print $1 }') 2>/dev/null
true`;
}

/**
 * A POSIX sh script, run by exec in the sidecar's container, that hangs the session up as a
 * closed terminal would, but from the leaves of its process tree up: each process gets SIGHUP
 * only once it has no child left, so that its parent, still alive, reaps it. (All at once, a
 * shell could die before its foreground command; the command would then go to the target's PID
 * 1, which rarely reaps, and stay a zombie there.) The entry shell (PPid 0) gets it first: it
 * runs its trap once its foreground job has ended. Whatever outlives 20 rounds (it ignores
 * SIGHUP, or its parent does not reap) gets SIGHUP anyway, and removal kills what is left.
 */
export function hangupScript(): string {
  return `${SESSION}
${HANGUP}`;
}

const HANGUP = `kill -HUP $(session | awk '$2 == 0 { print $1 }') 2>/dev/null
i=0
while [ $i -lt 20 ]; do
  rest=$(session | awk '$2 != 0')
  [ -n "$rest" ] || exit 0
  kill -HUP $(echo "$rest" | awk '{ p[$1]; pp[$2] } END { for (x in p) if (!(x in pp)) print x }') 2>/dev/null
  sleep 0.1; i=$((i+1))
done
kill -HUP $(session | awk '$2 != 0 { print $1 }') 2>/dev/null
true`;

/**
 * Whether another lifeline runs in this container (a second dbg attached to the session): its
 * process is in the same cgroup and mount namespace, with the lifeline's name in its argv.
 */
const OTHER_LIFELINE = `others() {
  for d in /proc/[0-9]*; do
    [ "\${d#/proc/}" != $$ ] && [ "$(cat "$d/cgroup" 2>/dev/null)" = "$c" ] &&
      [ "$d/ns/mnt" -ef /proc/$$/ns/mnt ] && grep -q ${LIFELINE_NAME} "$d/cmdline" 2>/dev/null &&
      return 0
  done
  return 1
}`;

/**
 * What dbg writes to its lifeline: a beat, the word that lets it go without a hangup, and the
 * one that hangs up now (an end of input would too, but containerd's shim holds the input open).
 */
export const LIFELINE_BEAT = "\n";
export const LIFELINE_QUIT = "q\n";
export const LIFELINE_HANGUP = "h\n";

/**
 * dbg's lifeline: a POSIX sh script, run by exec in the sidecar with its stdin held by dbg, that
 * hangs the session up when that input ends (dbg is gone, even by SIGKILL: the engine closes
 * the stream) or when no beat came for {@link LIFELINE_GRACE_S} seconds (the connection died
 * without an end), or at once on {@link LIFELINE_HANGUP}. It exits without a hangup on
 * {@link LIFELINE_QUIT}, and when its input ends while another dbg's lifeline holds the session. A shell without `read -t`
 * (dash) waits for the end alone. Run it as `sh -c SCRIPT dbg-lifeline`.
 */
export function lifelineScript(): string {
  return `if echo | read -r -t 1 _ 2>/dev/null; then
  while read -r -t ${LIFELINE_GRACE_S} l && [ "$l" != h ]; do [ "$l" != q ] || exit 0; done
else
  while read -r l && [ "$l" != h ]; do [ "$l" != q ] || exit 0; done
fi
${SESSION}
${OTHER_LIFELINE}
[ "$l" = h ] || ! others || exit 0
${HANGUP}`;
}

/** The argv of the lifeline's exec. */
export function lifelineArgv(): string[] {
  return ["/bin/sh", "-c", lifelineScript(), LIFELINE_NAME];
}
