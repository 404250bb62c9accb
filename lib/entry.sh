# dbg sidecar entry script: see entry.ts for how it works. POSIX sh (BusyBox ash), run as
# sh -c 'eval "$DBG_ENTRY"' dbg-helper -- [COMMAND [ARG...]], settings in DBG_*.
#
# The script's state lives in shell variables of this process. The target's environment and
# the -e values (DBG_E1…DBG_E<DBG_NENV>, never in an argv) are applied only in the child that
# runs the command (launch), after its argv is complete, and launch itself uses only _dbg_*
# variables, which the import skips. So no variable of the target's or the user's can change
# what this script does.
mode=$DBG_MODE; fallback=$DBG_FALLBACK; profile=$DBG_PROFILE; hint=$DBG_PID; tid=$DBG_TARGET_ID
under=$DBG_ROOT_PATH; wd=$DBG_WORKDIR; image=$DBG_IMAGE; shell=$DBG_SHELL; tools=$DBG_TOOLS
user=$DBG_USER; nix=$DBG_NIX; quiet=$DBG_QUIET; priv=$DBG_PRIVILEGED; tty=$DBG_TTY
banner=$DBG_BANNER; _dbg_tp=$DBG_TARGET_PATH; wflag=$DBG_WORKDIR_FLAG
term=${TERM:-}; go=${DBG_GO:-}; _dbg_ne=${DBG_NENV:-0}
i=1
while [ $i -le "$_dbg_ne" ]; do eval "_dbg_e$i=\$DBG_E$i; unset DBG_E$i"; i=$((i+1)); done
unset DBG_ENTRY DBG_MODE DBG_FALLBACK DBG_PROFILE DBG_PID DBG_TARGET_ID DBG_ROOT_PATH DBG_WORKDIR \
  DBG_IMAGE DBG_SHELL DBG_TOOLS DBG_USER DBG_NIX DBG_QUIET DBG_PRIVILEGED DBG_TTY DBG_BANNER DBG_GO \
  DBG_TARGET_PATH DBG_NENV DBG_WORKDIR_FLAG
# Kubernetes starts an ephemeral container before anyone can attach to it: wait for dbg's go
# line, so that no output is lost, and give up (leaving nothing) if dbg never comes.
# (A shell without `read -t`, such as dash, waits without that limit.) A go line "nostdin" says
# that dbg cannot end the command's input (an old cluster): the command gets /dev/null.
# Without a TTY the kubelet joins the attach's stderr after its stdin, so the go line may come
# before anything written there reaches dbg: a ready mark on stderr, sent each second until dbg
# answers with a line, says when it does. (The probe for `read -t` reads /dev/null: no child.)
if [ -n "$go" ]; then
  [ "$tty" != 1 ] || stty -echo 2>/dev/null
  ready() { printf '\033]5379;dbg-ready\007' >&2; }
  if { read -r -t 1 _dbg_go </dev/null; } 2>/dev/null; [ $? = 1 ]; then
    read -r -t "$go" _dbg_go || { echo "dbg: nobody attached within ${go}s" >&2; exit 125; }
    i=0
    while [ "$tty" != 1 ] && { ready; ! read -r -t 1 _; }; do
      i=$((i+1)); [ $i -lt "$go" ] || exit 125
    done
  else
    read -r _dbg_go || exit 125
    [ "$tty" = 1 ] || { ready; read -r _ || exit 125; }
  fi
  [ "$tty" != 1 ] || stty echo 2>/dev/null
  [ "$_dbg_go" != nostdin ] || exec </dev/null
fi
KU=; C=; link=; got=; ug=
# This shell never leaves the debugger image's root, so the image stays reachable at
# /proc/$$/root from inside the target's root (same PID namespace).
TR=/proc/$$/root; UTR=$TR

stop_keeper() {
  # SIGKILL: a keeper just forked may still hold this shell's traps, which would swallow TERM.
  [ -z "$KU" ] || { kill -KILL "$KU" 2>/dev/null; wait "$KU" 2>/dev/null; KU=; }
}
cleanup() {
  stop_keeper
  if [ -n "$link" ] && [ "$(readlink "$link" 2>/dev/null)" = "$UTR/nix" ]; then rm -f "$link"; fi
  link=
}
# settle: when dbg stops a session, it may signal through a script it runs in this container
# (lib/kill.ts). Wait (3 s at most) until this shell is the container's last process:
# ending the container kills what is left, and the children of a killed script would go to the
# target's PID 1, which rarely reaps them. The container's processes are those in this shell's
# cgroup and mount namespace (the cgroup alone may be the target's too: rootless Podman on
# cgroup v1). (The scan uses builtins, so it has no children.)
cg() { _cg=; { while IFS= read -r _l; do _cg="$_cg$_l;"; done < "$1"; } 2>/dev/null; }
settle() {
  cg /proc/$$/cgroup; _me=$_cg; _n=0
  while [ $_n -lt 30 ]; do
    _alone=1
    for _d in /proc/[0-9]*; do
      [ "${_d#/proc/}" = $$ ] && continue
      cg "$_d/cgroup"; [ "$_cg" != "$_me" ] || ! [ "$_d/ns/mnt" -ef /proc/$$/ns/mnt ] || { _alone=; break; }
    done
    [ -z "$_alone" ] || return 0
    sleep 0.1; _n=$((_n+1))
  done
}
say() { [ "$quiet" = 1 ] || echo "dbg: $*" >&2; }
# A working dir that is not there: -w fails, as docker exec -w does; the target's own is noted.
no_wd() {
  if [ "$wflag" = 1 ]; then echo "dbg: -w ${wd:-/}: no such directory $1" >&2; cleanup; exit 126; fi
  say "cannot enter $(shown "${wd:-/}") $1; starting in $2"
}
# The target's working dir as dbg prints it: the target chose it, so no control characters.
shown() { case $1 in *[[:cntrl:]]*) echo "(a path with control characters)" ;; *) printf '%s\n' "$1" ;; esac; }
die() { echo "dbg: $*" >&2; cleanup; exit 125; }
# Until the command runs, a signal ends the session here and undoes the setup.
trap 'cleanup; settle; exit 130' INT
trap 'cleanup; settle; exit 143' TERM
trap 'cleanup; settle; exit 129' HUP
in_target() { [ -z "$tid" ] && return; cg "/proc/$1/cgroup"; case $_cg in *"$tid"*) ;; *) return 1 ;; esac; }
# ids PID: the real uid and gid of a process, as UID:GID (/proc/PID/status is world-readable).
ids() { awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u ":" g }' "/proc/$1/status"; }
# pw FILE KEYFIELD KEY OUTFIELD: a field of the first line of the target's FILE whose KEYFIELD
# is KEY (passwd and group files).
pw() { awk -F: -v f="$2" -v k="$3" -v o="$4" '$f == k { print $o; exit }' "$R$1" 2>/dev/null; }
# in_path NAME: whether NAME is in this (the debugger's) image; where is in $_path.
in_path() {
  IFS=:
  for _d in $PATH; do [ -f "$_d/$1" ] && [ -x "$_d/$1" ] && { unset IFS; _path=$_d/$1; return 0; }; done
  unset IFS; return 1
}

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
# (A node's root is a directory of its pod's root: DBG_ROOT_PATH.)
R=/proc/$T/root$under

# Without the right to read the target's root (another uid, and no SYS_PTRACE), say why and
# which flag would do it, or go plain as the target's own ids when the plan allows it.
# (nsenter is looked up only where it may serve: a plain session without -u never needs it.)
nsenter=; [ "$mode" = plain ] && [ -z "$user" ] || ! in_path nsenter || nsenter=$_path
cannot_read() {
  tids=$(ids "$T"); sids=${plain_as:-$(ids $$)}
  read -r m1 m2 m3 < "/proc/$T/uid_map"; read -r s1 s2 s3 < "/proc/$$/uid_map"
  fix="--profile general (it adds SYS_PTRACE)"
  if [ "$m1 $m2 $m3" != "$s1 $s2 $s3" ]; then
    why="the target is in a user namespace of its own (uid map $m1 $m2 $m3)"
  elif [ "$tids" = "$sids" ]; then
    why="the target's process changed its ids itself, which leaves it readable only with SYS_PTRACE"
  else
    why="the target's process runs as $tids and this session as $sids"
    [ "${sids%%:*}" = 0 ] || [ "${tids%%:*}" = 0 ] || fix="-u $tids"
  fi
  case $profile in baseline | restricted) ;; *) [ "$fix" != "${fix#--profile}" ] && fix=--privileged ;; esac
  echo "cannot read the target's root filesystem at $R: $why. $fix can"
}
plain_as=
if [ "$mode" != plain ] && ! [ -e "$R/." ]; then
  tids=$(ids "$T")
  if [ "$fallback" = 1 ] && [ "${tids%%:*}" != 0 ] && [ -z "$user" ] && [ -n "$nsenter" ]; then
    mode=plain; plain_as=$tids; wd=
    banner="dbg: plain mode ($profile adds no SYS_PTRACE, so dbg runs as the target's ids $tids)"
  else
    die "$(cannot_read)"
  fi
fi

# An image outside the catalog: chroot when its shell is static (it then runs in any root),
# else plain. Only the ELF header is read: nothing of the target's runs for the probe.
if [ "$mode" = probe ]; then
  elf=$(od -An -v -t u1 -N 4096 "$TR$shell" 2>/dev/null | awk '
    function u(o, k,   v, j) { v = 0; for (j = k - 1; j >= 0; j--) v = v * 256 + (le ? b[o + j] : b[o + k - 1 - j]); return v }
    { for (i = 1; i <= NF; i++) b[n++] = $i }
    END {
      if (b[0] != 127 || b[1] != 69 || b[2] != 76 || b[3] != 70) { print "unknown"; exit }
      le = b[5] == 1; w = b[4] == 2
      ph = w ? u(32, 8) : u(28, 4); sz = u(w ? 54 : 42, 2); num = u(w ? 56 : 44, 2)
      for (i = 0; i < num; i++) {
        o = ph + i * sz
        if (o + sz > n) { print "unknown"; exit }
        if (u(o, 4) != 3) continue
        off = w ? u(o + 8, 8) : u(o + 4, 4); s = ""
        for (j = off; j < n && b[j] != 0; j++) s = s sprintf("%c", b[j] + 0)
        print "dynamic " s; exit
      }
      print "static"
    }')
  case $elf in
    static) mode=chroot ;;
    dynamic*) mode=plain; why="its shell needs the loader ${elf#dynamic }, so its tools may not run in the target; --mode chroot to try" ;;
    *) mode=plain; why="dbg cannot tell whether its shell $shell runs in the target; --mode chroot to try" ;;
  esac
  [ "$mode" = chroot ] || { banner="dbg: plain mode ($image is not in the catalog, and $why)"; wd=; }
fi

if [ "$mode" != plain ] || [ -n "$user" ]; then
  [ -n "$nsenter" ] || die "$mode mode needs nsenter (BusyBox has it) in the debugger image: use --mode plain"
fi
# -u: names resolve in the target's passwd and group files; numeric ids need no entry there
# (as with docker run -u). The switch itself is nsenter's, outside the target's files.
if [ -n "$user" ]; then
  u=${user%%:*}; g=; case $user in *:*) g=${user#*:} ;; esac
  case $u in
    *[!0-9]*) uid=$(pw /etc/passwd 1 "$u" 3); pgid=$(pw /etc/passwd 1 "$u" 4)
      [ -n "$uid" ] || die "user $u is not in the target's /etc/passwd (numeric ids need no entry: -u UID[:GID])" ;;
    *) uid=$u; pgid=$(pw /etc/passwd 3 "$u" 4) ;;
  esac
  case $g in
    "") gid=${pgid:-0} ;;
    *[!0-9]*) gid=$(pw /etc/group 1 "$g" 3)
      [ -n "$gid" ] || die "group $g is not in the target's /etc/group (numeric ids need no entry: -u UID:GID)" ;;
    *) gid=$g ;;
  esac
  ug=$uid:$gid
fi
[ -z "$plain_as" ] || ug=$plain_as
[ "$ug" != 0:0 ] || ug=

if [ "$mode" != plain ]; then
  if [ -n "$ug" ]; then
    # The session's user reads this image's tools through a keeper of its own: reading
    # /proc/<pid>/root takes the same uid and gid. It counts as started once it runs sleep.
    in_path sleep || die "-u in $mode mode needs sleep in the debugger image"
    sleep=$_path
    "$nsenter" -S "${ug%:*}" -G "${ug#*:}" -F -- "$sleep" 2147483647 </dev/null >/dev/null 2>&1 &
    KU=$!; UTR=/proc/$KU/root; i=0
    while [ $i -lt 100 ] && { IFS= read -r -d '' a0 < "/proc/$KU/cmdline"; [ "$a0" != "$sleep" ]; } 2>/dev/null; do
      sleep 0.01; i=$((i+1))
    done
    [ "$a0" = "$sleep" ] || die "cannot start a process as $ug in the sidecar"
  fi

  if [ "$nix" = 1 ]; then
    if [ -d "$R/nix" ] && [ ! -L "$R/nix" ]; then
      # The target has its own /nix: only a private mount namespace can show this image's store.
      if [ "$mode" = mount ] || [ "$priv" = 1 ]; then
        mode=mount; say "the target has its own /nix: mount mode shows this image's store there, for this session only"
      else mode=plain; fi
    elif [ "$mode" = chroot ] && ! [ -e "$R/nix" ] && ! [ -L "$R/nix" ] && ln -s "$UTR/nix" "$R/nix" 2>/dev/null; then
      link=$R/nix
      say "linked /nix in the target to this image's store for the session; it is removed on exit"
    else
      mode=plain
    fi
    if [ "$mode" = plain ]; then
      say "nix tools need /nix, and the target can take neither a temporary link nor a mount: plain mode"
      stop_keeper; banner=
    fi
  fi
fi
[ "$quiet" = 1 ] || [ -z "$banner" ] || echo "$banner" >&2

# wd_in DIR: sets rwd to DIR in the target's root without symlinks, or to nothing when it is
# not a directory there. A path with a symlink or a dot-dot is resolved by this image's shell
# inside the target's root, where absolute links mean what they say.
wd_in() {
  rwd=; _p=; _ok=1
  set -f; IFS=/
  for _c in $1; do
    case $_c in "" | .) continue ;; ..) _ok=; break ;; esac
    _p=$_p/$_c; [ ! -L "$R$_p" ] || { _ok=; break; }
  done
  unset IFS; set +f
  if [ -n "$_ok" ]; then [ ! -d "$R$_p" ] || rwd=${_p:-/}; return 0; fi
  rwd=$("$nsenter" -r"$R/" -F -- "$TR$shell" -c 'cd -- "$1" 2>/dev/null && pwd -P' sh "$1")
}

# The command's argv comes after --; the front of it is extended below.
[ "${1-}" != -- ] || shift
interactive=; [ $# -gt 0 ] || interactive=1
# -q hushes the greeting of BusyBox's shell on a terminal (see launch); that shell reads $ENV
# only with -i. (It is the one that greets; catalog images keep it at /bin/busybox.)
_dbg_hush=
[ "$quiet" != 1 ] || [ "$tty" != 1 ] || [ -z "$interactive" ] || ! [ "$shell" -ef /bin/busybox ] ||
  _dbg_hush=-i
# nsenter switches users after it entered the target's root and working dir: numeric ids only.
sw=; [ -z "$ug" ] || sw="-S ${ug%:*} -G ${ug#*:}"

# A command that cannot run is one line of dbg's, not a shell's words about dbg's plumbing: the
# command goes through this check, run by the debugger's shell where the command runs (its
# root, its user, its PATH), which then execs it. A name found nowhere says where the target has
# a program of that name ($_dbg_tpath, taken out of the command's environment here).
# (Not exec --: dash takes -- for the command. A command that starts with - is no command.)
_dbg_check='t=${_dbg_tpath:-}; unset _dbg_tpath
case $1 in
  -* | "") ;;
  */*)
    [ -e "$1" ] || { echo "dbg: $1: no such file" >&2; exit 127; }
    [ -f "$1" ] && [ -x "$1" ] || { echo "dbg: $1: not an executable file" >&2; exit 126; }
    exec "$@" ;;
  *)
    IFS=:; for d in $PATH; do
      [ -f "${d:-.}/$1" ] && [ -x "${d:-.}/$1" ] || continue
      # (BusyBox runs an applet named alone inside this shell, under its command line: so the
      # file goes by its path, with the process named as typed, where the shell can do that.)
      if (exec -a dbg true) 2>/dev/null; then a=$1; shift; exec -a "$a" "${d:-.}/$a" "$@"; fi
      exec "$@"
    done
    for d in $t; do
      [ -f "$d/$1" ] && [ -x "$d/$1" ] || continue
      case $d/$1 in *[[:cntrl:]]*) break ;; esac
      echo "dbg: $1: not among the debugger'"'"'s tools; the target has $d/$1: run it by its path, or pass --target-path" >&2
      exit 127
    done ;;
esac
echo "dbg: $1: executable file not found in PATH" >&2
exit 127'

if [ "$mode" = plain ]; then
  export DBG_TARGET_ROOT="$R"
  # (After a fallback the session runs as the target's ids: ask as them.)
  # shellcheck disable=SC2086 # $sw is flags
  # (The banner said where the target's files are; only a failure to read them is news.)
  if ! { [ -z "$plain_as" ] && [ -e "$R/." ]; } && ! { [ -n "$plain_as" ] && "$nsenter" $sw -F -- "$shell" -c '[ -e "$1/." ]' sh "$R"; }; then
    say "$(cannot_read)"
  fi
  [ -z "$wd" ] || cd "$wd" 2>/dev/null || no_wd "in the sidecar" "$(pwd)"
  if [ -n "$interactive" ]; then set -- "$shell" $_dbg_hush; else set -- "$shell" -c "$_dbg_check" dbg-helper "$@"; fi
  # shellcheck disable=SC2086 # $sw is flags
  [ -z "$sw" ] || set -- "$nsenter" $sw -F -- "$@"
  _dbg_import=
else
  if [ -n "$interactive" ]; then
    set -- "$UTR$shell" $_dbg_hush
  else
    set -- "$UTR$shell" -c "$_dbg_check" dbg-helper "$@"
  fi
  wd_in "${wd:-/}"
  [ -n "$rwd" ] || { no_wd "in the target" /; rwd=/; }
  if [ "$mode" = mount ]; then
    # A mount cannot take a source from another mount namespace, so the session enters a
    # private copy of the target's own mount namespace (nsenter, then unshare at once): it sees
    # the target's mounts, and whatever it mounts stays in the copy. Until the store is mounted,
    # paths through /nix are resolved on this side, one symlink deep, so that the name (and so
    # the BusyBox applet) stays.
    via_tr() { l=$(readlink "$1") && case $l in /*) echo "$UTR$l"; return ;; esac; echo "$UTR$1"; }
    for t in unshare mount ln; do in_path "$t" || die "mount mode needs $t in the debugger image: use --mode plain"; eval "p_$t=\$_path"; done
    msh=$(via_tr "$shell"); munshare=$(via_tr "$p_unshare")
    pre=; [ "$nix" != 1 ] || pre="'$(via_tr "$p_mount")' -t tmpfs dbg-nix /nix && '$(via_tr "$p_ln")' -s '$UTR/nix/store' /nix/store || exit 125
"
    # shellcheck disable=SC2086 # $sw is flags
    set -- "$nsenter" "--mount=/proc/$T/ns/mnt" "$munshare" -m --propagation private \
      "$msh" -c "${pre}exec \"\$@\"" "$msh" "$(via_tr "$nsenter")" "-w$rwd" $sw -F -- "$@"
  else
    # shellcheck disable=SC2086 # $sw is flags
    set -- "$nsenter" "-r$R/" "-w$R$rwd" $sw -F -- "$@"
  fi
  # PATH in the session: the tools, and the target's dirs after them only when asked
  # (--target-path): a name typed without a path runs no program of the target's.
  toolpath=
  IFS=:; for d in $tools; do toolpath="$toolpath:$UTR$d"; done; unset IFS
  _dbg_import=1
  # The names to clear in the command's child, listed here: a child that forks nothing before
  # its exec leaves no orphan when a signal kills it (the target's PID 1 would inherit it and
  # keep it as a zombie).
  # (This shell's exported names, from export -p: a value's second line may add a name, which
  # is harmless. Not /proc/$$/environ: a shell's read takes a byte a call, and this script is
  # in there, ~10 ms.)
  _dbg_unset=
  set -f; IFS='
'
  for _kv in $(export -p); do
    _kv=${_kv#export }; _kv=${_kv#declare -x }
    case ${_kv%%=*} in "" | [0-9]* | *[!A-Za-z0-9_]* | _dbg_*) ;; *) _dbg_unset="$_dbg_unset ${_kv%%=*}" ;; esac
  done
  unset IFS; set +f
fi
_dbg_T=$T _dbg_toolpath=$toolpath _dbg_term=$term

# launch: runs in the child, then execs the command. It takes the target's live environment
# (chroot and mount modes), sets PATH and TERM, then the -e values.
launch() {
  if [ -n "$_dbg_import" ]; then
    for _dbg_v in $_dbg_unset; do
      unset "$_dbg_v" 2>/dev/null
    done
    # NUL-separated, so values with newlines stay whole. Names that are no shell identifier
    # (spring.profiles.active) cannot be exported: ash would abort. Skipped too: dbg's own
    # names, and whatever steers a shell or the dynamic loader (a target's would run its code
    # with the session's privileges): IFS, ENV, prompts, LD_*, and glibc's list of variables
    # it ignores for setuid programs. The target's PATH is kept aside for --target-path.
    _dbg_tpath=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    while IFS= read -r -d '' _dbg_kv; do
      case ${_dbg_kv%%=*} in
        PATH) _dbg_tpath=${_dbg_kv#PATH=} ;;
        "" | [0-9]* | *[!A-Za-z0-9_]* | _dbg_* | IFS | ENV | BASH_ENV | BASHOPTS | SHELLOPTS | \
          CDPATH | GLOBIGNORE | PROMPT_COMMAND | PS[0-9] | HISTFILE | LD_* | GCONV_PATH | \
          GETCONF_DIR | HOSTALIASES | LOCALDOMAIN | LOCPATH | MALLOC_* | NIS_PATH | NLSPATH | \
          RESOLV_HOST_CONF | RES_OPTIONS | TMPDIR | TZDIR) ;;
        *) case $_dbg_kv in *=*) export "$_dbg_kv" ;; esac ;;
      esac
    done < "/proc/$_dbg_T/environ"
    _dbg_p=${_dbg_toolpath#:}
    if [ "$_dbg_tp" = 1 ]; then _dbg_p="$_dbg_p:$_dbg_tpath"; else export _dbg_tpath; fi
    export PATH="$_dbg_p"
    export HISTFILE=/dev/null PS1='[dbg] \w \$ ' PS2='> ' PS4='+ '
  fi
  [ -z "$_dbg_term" ] || export TERM="$_dbg_term"
  # (-e names are shell identifiers and never _dbg_*: options.ts checks.)
  _dbg_i=1
  while [ "$_dbg_i" -le "$_dbg_ne" ]; do
    eval "export \"\$_dbg_e$_dbg_i\""; _dbg_i=$((_dbg_i + 1))
  done
  if [ -n "$_dbg_hush" ]; then
    # -q: BusyBox's shell greets before it reads $ENV, so its stdout is elsewhere until then
    # (this ENV, a here-document on fd 4, puts it back and leaves nothing behind).
    export ENV=/proc/self/fd/4
    exec "$@" 3>&1 1>/dev/null 4<<'DBG_ENV'
exec 1>&3 3>&- 4<&-; unset ENV
DBG_ENV
  fi
  exec "$@"
}

# Stay the parent of everything this session starts and reap it before exiting: the target's
# PID 1 inherits orphans and rarely reaps them, so they would stay as zombies in its namespace.
# Without a TTY the whole process group gets the signal (this shell ignores it meanwhile), so
# the command's own children end too, while their parent can still reap them. The group is
# this shell's: the runtime makes the sidecar's main process a session leader.
fwd() {
  got=$1
  [ -n "$C" ] || return 0
  read -r st < "/proc/$$/stat"; set -- "$2" ${st##*) }
  if [ "$tty" != 1 ] && [ "$4" = $$ ]; then
    trap '' "$1"; kill -s "$1" 0 2>/dev/null
    case $1 in TERM) trap 'fwd 143 TERM' TERM ;; HUP) trap 'fwd 129 HUP' HUP ;; esac
  else
    kill -s "$1" "$C" 2>/dev/null
  fi
}
trap 'fwd 130 TERM' INT
trap 'fwd 143 TERM' TERM
trap 'fwd 129 HUP' HUP
if [ -n "$got" ]; then
  rc=$got # stopped before the command started
elif [ "$tty" = 1 ] && set -m 2>/dev/null && case $- in *m*) true ;; *) false ;; esac; then
  # On a TTY the command is a job in the foreground (job control), so Ctrl-C and Ctrl-Z reach
  # it as they would at a prompt. This shell then cannot run traps until the job ends, so dbg
  # ends a TTY session with a hangup of every process of the sidecar, as a closed terminal
  # would: the job ends, and this shell goes on to reap everything.
  launch "$@" &
  C=$!
  # A hangup that came before C existed is delivered now.
  [ -z "$got" ] || kill -s HUP "$C" 2>/dev/null
  fg %% >/dev/null; rc=$?
  # A job stopped with Ctrl-Z comes back to the foreground: there is no shell to return to.
  while grep -q '^State:[[:space:]]*T' "/proc/$C/status" 2>/dev/null; do
    fg %% >/dev/null; rc=$?
  done
elif [ "$tty" = 1 ]; then
  ( launch "$@" ); rc=$?
else
  # Without a TTY, signals come from dbg through the runtime, to this shell. Run the command in
  # the background so that wait is interrupted and the trap forwards them. Background jobs
  # ignore SIGINT (POSIX), so an interrupt ends the command with SIGTERM.
  exec 3<&0
  launch "$@" <&3 3<&- &
  C=$!
  exec 3<&-
  # A signal that came before C existed is delivered now.
  [ -z "$got" ] || kill -s TERM "$C" 2>/dev/null
  while :; do wait "$C"; rc=$?; kill -0 "$C" 2>/dev/null || break; done
fi
C=
[ -z "$got" ] || [ "$rc" -le 128 ] || rc=$got
cleanup
[ -z "$got" ] || settle
# Kubernetes reports an exit code a second or more after the fact: hand it to dbg at once, as
# the last bytes of the stream, in an OSC sequence that dbg strips (and terminals ignore).
[ -z "$go" ] || printf '\033]5379;dbg-exit=%s\007' "$rc" >&2
exit $rc
