#!/bin/sh
# The demo on a fresh machine: installs what it lacks (Deno from npm; Docker's engine, gcc and a
# static BusyBox from the distribution), saying so first, then runs scripts/demo.ts: a shell-less
# target on your Docker, and dbg on it. A machine with Deno, Docker, gcc and busybox-static
# installs nothing.
set -eu
SETUP_NAME=demo
. "$(dirname "$0")/_setup.sh"
# The demo builds its target with gcc and its debugger image from a static BusyBox.
need_packages "to build the demo's images" gcc libc6-dev busybox-static
# Any reachable Docker will do; without one, the distribution's engine.
if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
  need_packages "no Docker is reachable" docker.io
fi
need_deno
cd "$(dirname "$0")/.."
exec deno run --allow-all --quiet scripts/demo.ts "$@"
