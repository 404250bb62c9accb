# Shared by scripts/demo.sh and scripts/test.sh (sourced, POSIX sh): install what a fresh Debian
# or Ubuntu machine lacks, saying so first. Needs root (or sudo) only when something is missing.

# The prefix that runs a command as root: nothing as root, else sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "$SETUP_NAME: installing needs root: run this as root or with sudo" >&2; exit 1
  fi
}

# need_packages WHY PKG...: apt-get install the Debian packages that are not installed.
need_packages() {
  why=$1; shift; missing=
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -n "$missing" ] || return 0
  command -v apt-get >/dev/null 2>&1 || {
    echo "$SETUP_NAME: missing$missing ($why), and this is no Debian or Ubuntu: install them" >&2
    exit 1
  }
  echo "$SETUP_NAME: installing$missing ($why) with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086 # a list of package names
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# need_deno: Deno on PATH, from the npm package when missing (scripts/install-deno.sh).
need_deno() {
  command -v deno >/dev/null 2>&1 && return 0
  command -v npm >/dev/null 2>&1 || need_packages "npm, to install Deno" npm
  echo "$SETUP_NAME: installing Deno from npm (scripts/install-deno.sh)" >&2
  deno_bin=$("$(dirname "$0")/install-deno.sh")
  PATH="$(dirname "$deno_bin"):$PATH"; export PATH
}
