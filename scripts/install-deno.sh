#!/bin/sh
# Installs Deno from the npm package `deno` (the binary ships inside it) when `deno` is missing,
# into ~/.cache/dbg/deno, and links it into /usr/local/bin when that is writable.
# Usage: scripts/install-deno.sh   (prints the path of the deno binary)
set -eu
DENO_VERSION=2.9.6
if command -v deno >/dev/null 2>&1; then command -v deno; exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "install-deno: npm is missing (apt-get install npm)" >&2; exit 1; }
prefix=${DBG_DENO_PREFIX:-${HOME:-/root}/.cache/dbg/deno}
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >&2
bin=$prefix/node_modules/.bin/deno
"$bin" --version >/dev/null
if [ -w /usr/local/bin ]; then ln -sf "$bin" /usr/local/bin/deno; echo /usr/local/bin/deno
else echo "$bin"; echo "install-deno: add $(dirname "$bin") to PATH" >&2; fi
