/**
 * Signals inside a sidecar, for runtimes that cannot signal every process of a container
 * themselves (Docker signals only its main process; Kubernetes none): a script to run there by
 * exec.
 *
 * @module
 */

/**
 * A POSIX sh script, run by exec in the sidecar's container, that sends `sig` to the session's
 * entry shell, or with `all` to every process of the container. The entry shell is the
 * container's main process: the one in this container's cgroup whose parent is outside the PID
 * namespace (PPid 0), like this script's own shell, which it skips with its children.
 */
export function killScript(sig: string, all: boolean): string {
  return `c=$(cat /proc/self/cgroup)
for d in /proc/[0-9]*; do
  p=\${d#/proc/}
  [ "$p" = "$$" ] && continue
  [ "$(cat "$d/cgroup" 2>/dev/null)" = "$c" ] || continue
  pp=$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)
  [ "$pp" = "$$" ] && continue
  ${all ? "" : '[ "$pp" = 0 ] && '}kill -${sig} "$p" 2>/dev/null
done
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
  return `c=$(cat /proc/self/cgroup)
# The session's processes as "PID PPID": this container's, but not this script nor its children.
session() {
  for d in /proc/[0-9]*; do
    [ "$(cat "$d/cgroup" 2>/dev/null)" = "$c" ] || continue
    echo "\${d#/proc/} $(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)"
  done | awk -v me=$$ 'NF == 2 { pp[$1] = $2 } END {
    for (p in pp) { q = p; while ((q in pp) && q != me) q = pp[q]; if (q != me) print p, pp[p] } }'
}
kill -HUP $(session | awk '$2 == 0 { print $1 }') 2>/dev/null
i=0
while [ $i -lt 20 ]; do
  rest=$(session | awk '$2 != 0')
  [ -n "$rest" ] || exit 0
  kill -HUP $(echo "$rest" | awk '{ p[$1]; pp[$2] } END { for (x in p) if (!(x in pp)) print x }') 2>/dev/null
  sleep 0.1; i=$((i+1))
done
kill -HUP $(session | awk '$2 != 0 { print $1 }') 2>/dev/null
true`;
}
