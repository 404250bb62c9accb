/**
 * Signals inside a sidecar, for runtimes that cannot signal every process of a container
 * themselves (Docker signals only its main process; Kubernetes none): scripts to run there by
 * exec. Also dbg's lifeline, the exec that ends a session once dbg is gone.
 *
 * @module
 */

/** The name the lifeline runs under (its `$0`), which `ps` shows. */
export const LIFELINE_NAME = "dbg-lifeline";
/**
 * How long after its start a session opens its lifeline. Most `-- CMD` sessions have ended by
 * then and never pay for its exec; a dbg killed before it leaves its sidecar to `dbg gc`.
 */
export const LIFELINE_DELAY_MS = 250;
/** How often dbg writes to its lifeline. */
export const LIFELINE_BEAT_MS = 10_000;
/** How long the lifeline waits for the next beat before it takes dbg for gone. */
export const LIFELINE_GRACE_S = 25;

/**
 * `session`, for scripts run by exec in the sidecar's container: sets E to the entry shell and S
 * to " PID:PPID" for it and each process that descends from it. The entry shell is the oldest
 * process in this container's cgroup and mount namespace whose parent is outside the PID
 * namespace (PPid 0); the execs dbg runs beside it (this script, the lifeline, a hangup) are
 * younger, so they never signal one another. The cgroup alone would not do: it may be the
 * target's too (rootless Podman on cgroup v1 puts every container in its service's), and the
 * target shares the PID namespace. (In /proc/PID/stat, after the command's name in parentheses,
 * field 2 is the PPid and field 20 the start time.)
 *
 * It uses builtins only, so it has no children: Kubernetes kills an exec whose stream closes,
 * and the children of a killed script would go to the target's PID 1, which rarely reaps them.
 */
const SESSION =
  `cg() { _cg=; { while IFS= read -r _l; do _cg="$_cg$_l;"; done < "$1"; } 2>/dev/null; }
cg /proc/$$/cgroup; c=$_cg; _ps=
session() {
  for _p in $_ps; do unset "_pp$_p"; done
  E=; S=; _t=; _ps=
  for _d in /proc/[0-9]*; do
    cg "$_d/cgroup"; [ "$_cg" = "$c" ] || continue
    { read -r _s < "$_d/stat"; } 2>/dev/null || continue
    _p=\${_d#/proc/}; set -- \${_s##*) }
    eval "_pp$_p=\\$2"; _ps="$_ps $_p"
    [ "$2" = 0 ] && [ "$_d/ns/mnt" -ef /proc/$$/ns/mnt ] || continue
    [ -z "$E" ] || [ "\${20}" -lt "$_t" ] || { [ "\${20}" = "$_t" ] && [ "$_p" -lt "$E" ]; } || continue
    E=$_p; _t=\${20}
  done
  [ -n "$E" ] || return 0
  for _p in $_ps; do
    _q=$_p; _n=0
    while [ "$_q" != "$E" ] && [ $_n -lt 4096 ]; do
      eval "_q=\\\${_pp$_q:-0}"; [ "$_q" != 0 ] || break; _n=$((_n+1))
    done
    [ "$_q" != "$E" ] || eval "S=\\"\\$S \\$_p:\\$_pp$_p\\""
  done
}`;

/**
 * A POSIX sh script, run by exec in the sidecar's container, that sends `sig` to the session's
 * entry shell (the container's main process: PPid 0, as the PID namespace's parent is outside
 * it), or with `all` to every process of the session.
 */
export function killScript(sig: string, all: boolean): string {
  return `${SESSION}
session
${
    all
      ? `for _x in $S; do kill -${sig} "\${_x%%:*}" 2>/dev/null; done`
      : `[ -z "$E" ] || kill -${sig} "$E" 2>/dev/null`
  }
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

const HANGUP = `session; [ -z "$E" ] || kill -HUP "$E" 2>/dev/null
i=0
while [ $i -lt 20 ]; do
  session; rest=
  for _x in $S; do [ "\${_x%%:*}" = "$E" ] || rest="$rest $_x"; done
  [ -n "$rest" ] || exit 0
  for _x in $rest; do
    case "$rest " in *":\${_x%%:*} "*) ;; *) kill -HUP "\${_x%%:*}" 2>/dev/null ;; esac
  done
  sleep 0.1; i=$((i+1))
done
for _x in $rest; do kill -HUP "\${_x%%:*}" 2>/dev/null; done
true`;

/**
 * Whether another lifeline runs in this container (a second dbg attached to the session): its
 * process is in the same cgroup and mount namespace, with the lifeline's name in its argv.
 * (Read with builtins; a shell whose read has no -d, such as dash, sees none.)
 */
const OTHER_LIFELINE = `others() {
  for _d in /proc/[0-9]*; do
    [ "\${_d#/proc/}" != $$ ] || continue
    cg "$_d/cgroup"; [ "$_cg" = "$c" ] && [ "$_d/ns/mnt" -ef /proc/$$/ns/mnt ] || continue
    { while IFS= read -r -d '' _a; do [ "$_a" != ${LIFELINE_NAME} ] || return 0; done < "$_d/cmdline"; } 2>/dev/null
  done
  return 1
}`;

/**
 * `has_read_t`: whether this shell's read takes -t (BusyBox ash and bash do; dash does not). A
 * read of /dev/null ends at once with 1 where it does, and with 2 (an unknown option) where it
 * does not. No pipe, so no child.
 */
const HAS_READ_T = `has_read_t() { { read -r -t 1 _ </dev/null; } 2>/dev/null; [ $? = 1 ]; }`;

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
 * {@link LIFELINE_QUIT}, and when its input ends while another dbg's lifeline holds the session.
 * A shell without `read -t` (dash) waits for the end alone. Until its input ends it has no
 * child. Run it as `sh -c SCRIPT dbg-lifeline`.
 */
export function lifelineScript(): string {
  return `${HAS_READ_T}
if has_read_t; then
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
