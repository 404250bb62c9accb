# dbg sidecar entry script: see entry.ts for how it works. POSIX sh (BusyBox ash), run as
# sh -c 'eval "$DBG_ENTRY"' dbg-entry ARGS. Args: [NAME=VALUE...] -- [COMMAND [ARG...]]; settings in DBG_* (lib/plan.ts).
mode=$DBG_MODE; hint=$DBG_PID; tid=$DBG_TARGET_ID; wd=$DBG_WORKDIR; shell=$DBG_SHELL
tools=$DBG_TOOLS; user=$DBG_USER; nix=$DBG_NIX; quiet=$DBG_QUIET; priv=$DBG_PRIVILEGED
tty=$DBG_TTY; term=${TERM:-}
unset DBG_ENTRY DBG_MODE DBG_PID DBG_TARGET_ID DBG_WORKDIR DBG_SHELL DBG_TOOLS DBG_USER DBG_NIX DBG_QUIET DBG_PRIVILEGED DBG_TTY
K=; KU=; link=; TR=
stop_keepers() {
  for k in $K $KU; do kill "$k" 2>/dev/null; wait "$k" 2>/dev/null; done
  K=; KU=
}
say() { [ "$quiet" = 1 ] || echo "dbg: $*" >&2; }
die() { echo "dbg: $*" >&2; stop_keepers; exit 125; }
in_target() { [ -z "$tid" ] || grep -q "$tid" "/proc/$1/cgroup" 2>/dev/null; }
# The -e NAME=VALUE arguments come first, then --, then the command.
extra_env() { while [ $# -gt 0 ] && [ "$1" != -- ]; do export "$1"; shift; done; }
skip_env() { n=0; for a; do n=$((n+1)); [ "$a" = -- ] && break; done; echo $n; }

# Find the target's main process as this PID namespace sees it.
T=$hint
if [ "$T" = 0 ] || ! in_target "$T"; then
  T=
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    in_target "$p" || continue
    pp=$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)
    [ -n "$pp" ] && [ "$pp" != 0 ] && in_target "$pp" && continue
    T=$p; break
  done
  if [ -z "$T" ]; then
    [ "$hint" != 0 ] && [ -d "/proc/$hint" ] || die "cannot find the target's process in the shared PID namespace"
    T=$hint
  fi
fi
R=/proc/$T/root

if [ "$mode" != plain ]; then
  ls "$R/" >/dev/null 2>&1 || die "cannot read the target's root filesystem at $R: permission denied (the target runs as another user and dbg adds SYS_PTRACE for that; if a security policy drops it, try --mode plain)"

  # -u: resolve the user in the target's passwd/group files (numeric ids need no entry).
  if [ -n "$user" ]; then
    u=${user%%:*}; g=; case $user in *:*) g=${user#*:} ;; esac
    case $u in
      *[!0-9]*) uid=$(awk -F: -v n="$u" '$1 == n { print $3; exit }' "$R/etc/passwd" 2>/dev/null)
        pgid=$(awk -F: -v n="$u" '$1 == n { print $4; exit }' "$R/etc/passwd" 2>/dev/null)
        [ -n "$uid" ] || die "user $u is not in the target's /etc/passwd (pass a numeric uid, e.g. -u 1000)" ;;
      *) uid=$u; pgid=$(awk -F: -v id="$u" '$3 == id { print $4; exit }' "$R/etc/passwd" 2>/dev/null) ;;
    esac
    case $g in
      "") gid=${pgid:-0} ;;
      *[!0-9]*) gid=$(awk -F: -v n="$g" '$1 == n { print $3; exit }' "$R/etc/group" 2>/dev/null)
        [ -n "$gid" ] || die "group $g is not in the target's /etc/group (pass a numeric gid)" ;;
      *) gid=$g ;;
    esac
    [ -n "$(awk -F: -v id="$uid" '$3 == id { print 1; exit }' "$R/etc/passwd" 2>/dev/null)" ] || die "uid $uid is not in the target's /etc/passwd, which chroot mode needs to switch users (use --mode plain -u $user)"
    command -v start-stop-daemon >/dev/null || die "-u in $mode mode needs start-stop-daemon (busybox) in the debugger image: use --mode plain -u $user"
  fi

  # Keepers keep this image's root reachable at /proc/<keeper>/root from inside the chroot: one
  # as root for the chroot itself, one as the session's user for its PATH (reading
  # /proc/<pid>/root takes the same uid and no fewer capabilities than the reader has).
  sleep 2147483647 </dev/null >/dev/null 2>&1 &
  K=$!; TR=/proc/$K/root; KU=; UTR=$TR
  if [ -n "$user" ]; then
    # start-stop-daemon looks the uid up: give it an entry in this (the sidecar's) passwd file.
    awk -F: -v id="$uid" '$3 == id { f=1 } END { exit !f }' /etc/passwd 2>/dev/null ||
      echo "dbg-$uid:x:$uid:$gid::/:/sbin/nologin" >> /etc/passwd 2>/dev/null
    start-stop-daemon -S -q -p /.dbg-no-pidfile -c "$uid:$gid" -x "$(command -v sleep)" -- 2147483647 </dev/null >/dev/null 2>&1 &
    KU=$!; UTR=/proc/$KU/root
  fi
  i=0; while ! [ -e "$TR$shell" ] && [ $i -lt 100 ]; do sleep 0.01; i=$((i+1)); done
  [ -e "$TR$shell" ] || die "cannot reach the debugger's tools through $TR"
  [ -z "$KU" ] || { sleep 0.05; [ -d "/proc/$KU" ] && ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$KU/status"; } || die "cannot start a process as $uid:$gid in the sidecar"

  if [ "$nix" = 1 ]; then
    if [ -d "$R/nix" ] && [ ! -L "$R/nix" ]; then
      # The target has its own /nix: only a private mount namespace can show this image's store.
      if [ "$mode" = mount ] || [ "$priv" = 1 ]; then
        mode=mount; say "the target has its own /nix: mount mode shows this image's store there, for this session only"
      else mode=plain; fi
    elif [ -e "$R/nix" ] || [ -L "$R/nix" ]; then
      mode=plain
    elif [ "$mode" != plain ] && ln -s "$UTR/nix" "$R/nix" 2>/dev/null; then
      mode=chroot; link=$R/nix
      say "linked /nix in the target to this image's store for the session; it is removed on exit"
    else
      mode=plain
    fi
    if [ "$mode" = plain ]; then
      say "nix tools need /nix, and the target can take neither a temporary link nor a mount: plain mode"
      stop_keepers
    fi
  fi
fi

if [ "$mode" = mount ]; then
  # A mount cannot take a source from another mount namespace, so the session enters a private
  # copy of the target's own mount namespace (nsenter, then unshare at once): it sees the
  # target's mounts, and whatever it mounts stays in the copy.
  # Until the store is mounted, paths through /nix must be resolved on this side: one level of
  # symlink, so the name (and so the busybox applet) stays.
  via_tr() { l=$(readlink "$1") && case $l in /*) echo "$UTR$l"; return ;; esac; echo "$UTR$1"; }
  in_path() {
    IFS=:; for d in $PATH; do [ -e "$d/$1" ] && { unset IFS; echo "$d/$1"; return 0; }; done
    unset IFS; die "mount mode needs $1 in the debugger image: use --mode plain"
  }
  msh=$(via_tr "$shell"); munshare=$(via_tr "$(in_path unshare)") || die "cannot set up mount mode"
  mmount=$(via_tr "$(in_path mount)") && mln=$(via_tr "$(in_path ln)") || die "cannot set up mount mode"
  in_path nsenter >/dev/null || die "cannot set up mount mode"
fi

if [ "$mode" = plain ]; then
  export DBG_TARGET_ROOT="$R"
  say "the target's filesystem is at $R (also in \$DBG_TARGET_ROOT)"
  [ -z "$wd" ] || cd "$wd" 2>/dev/null || say "cannot enter $wd in the sidecar; starting in $(pwd)"
  extra_env "$@"; shift "$(skip_env "$@")"
  [ $# -gt 0 ] || set -- "$shell"
else
  # The target's live environment, PATH with the target's dirs first, then the tools.
  tenv=$(tr '\0' '\n' < "/proc/$T/environ" 2>/dev/null)
  names=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p')
  for v in $names; do unset "$v" 2>/dev/null; done
  while IFS= read -r kv; do
    case $kv in [A-Za-z_]*=*) export "$kv" 2>/dev/null ;; esac
  done <<EOF
$tenv
EOF
  toolpath=
  IFS=:
  for d in $tools; do toolpath="$toolpath:$UTR$d"; done
  unset IFS
  export PATH="${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}$toolpath"
  [ -z "$term" ] || export TERM="$term"
  export HISTFILE=/dev/null PS1='[dbg] \w \$ '
  extra_env "$@"; shift "$(skip_env "$@")"
  [ $# -gt 0 ] || set -- "$UTR$shell"
  # Inside the chroot: enter the working dir, switch user if asked, run the command.
  inner='cd -- "$1" 2>/dev/null || { echo "dbg: cannot enter $1 in the target; starting in /" >&2; cd /; }
shift; [ -z "$2" ] && shift 2 && exec "$@"
ssd=$1 ug=$2 c=$3; shift 3
exec "$ssd" -S -q -p /.dbg-no-pidfile -c "$ug" -x "$c" -- "$@"'
  ug=; [ -z "$user" ] || ug=$uid:$gid
  if [ "$mode" = mount ]; then
    pre=; [ "$nix" != 1 ] || pre="'$mmount' -t tmpfs dbg-nix /nix && '$mln' -s '$UTR/nix/store' /nix/store || exit 125
"
    set -- nsenter "--mount=/proc/$T/ns/mnt" "$munshare" -m --propagation private \
      "$msh" -c "$pre$inner" dbg-cd "${wd:-/}" "$TR/bin/start-stop-daemon" "$ug" "$@"
  else
    set -- /bin/chroot "$R/" "$TR$shell" -c "$inner" dbg-cd "${wd:-/}" "$TR/bin/start-stop-daemon" "$ug" "$@"
  fi
fi

# Stay the parent of everything this session starts and reap it before exiting: the target's
# PID 1 inherits orphans and rarely reaps them, so they would stay as zombies in its namespace.
C=; W=; got=
cleanup() {
  [ -z "$W" ] || { kill "$W" 2>/dev/null; wait "$W" 2>/dev/null; W=; }
  stop_keepers
  if [ -n "$link" ] && [ "$(readlink "$link" 2>/dev/null)" = "$UTR/nix" ]; then rm -f "$link"; fi
  link=
}
fwd() { got=$1; [ -z "$C" ] || kill -s "$2" "$C" 2>/dev/null; }
trap 'fwd 130 TERM' INT
trap 'fwd 143 TERM' TERM
trap 'fwd 129 HUP' HUP
fifo=/tmp/.dbg-tick-$$
if [ "$tty" = 1 ] && { mkfifo "$fifo" && exec 7<>"$fifo"; } 2>/dev/null && rm -f "$fifo" &&
  set -m 2>/dev/null; then
  # On a TTY the command is a job in the foreground (job control), so Ctrl-C and Ctrl-Z reach
  # it as they would at a prompt. This shell then cannot run traps until the job ends, so dbg
  # stops a TTY session with SIGSTOP instead, which the watcher below sees: it hangs up the
  # job's process groups and lets this shell go on to reap everything. The watcher learns the
  # job's pid through the FIFO, whose silence afterwards times its polling (read -t, no fork).
  E=$$
  (
    trap '' INT TERM HUP
    read -r C <&7 || exit 0
    while [ -d "/proc/$C" ]; do
      read -r st < "/proc/$E/stat" || break
      set -- ${st##*) }
      if [ "$1" = T ]; then
        read -r cs < "/proc/$C/stat" && set -- ${cs##*) } && fgp=$6 || fgp=
        for g in $fgp $C; do kill -HUP -- "-$g" 2>/dev/null; done
        kill -CONT "$E"
        i=0; while [ -d "/proc/$C" ] && [ $i -lt 20 ]; do read -t 0.1 _ <&7; i=$((i+1)); done
        for g in $fgp $C; do kill -KILL -- "-$g" 2>/dev/null; done
        break
      fi
      read -t 0.2 _ <&7
    done
  ) </dev/null >/dev/null 2>&1 &
  W=$!
  "$@" &
  C=$!
  echo "$C" >&7
  fg %% >/dev/null; rc=$?
  # A job stopped with Ctrl-Z comes back to the foreground: there is no shell to return to.
  while grep -q '^State:[[:space:]]*T' "/proc/$C/status" 2>/dev/null; do
    fg %% >/dev/null; rc=$?
  done
elif [ "$tty" = 1 ]; then
  "$@"; rc=$?
else
  # Without a TTY, signals come from dbg through the runtime, to this shell. Run the command in
  # the background so that wait is interrupted and the trap forwards them. Background jobs
  # ignore SIGINT (POSIX), so an interrupt ends the command with SIGTERM.
  exec 3<&0
  "$@" <&3 3<&- &
  C=$!
  exec 3<&-
  while :; do wait "$C"; rc=$?; kill -0 "$C" 2>/dev/null || break; done
fi
[ -z "$got" ] || [ "$rc" -le 128 ] || rc=$got
cleanup
exit $rc
