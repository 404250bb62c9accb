#!/usr/bin/env bash
# The whole test suite on a fresh machine, as CI runs it (.ci/run): installs what it lacks, then
# `deno task check` and every test, and ends with one line: "tests: N passed, M failed".
# The tests start their own private engines (dockerd, containerd, Podman, a registry, a
# single-node Kubernetes) on loopback, so they need root; they never touch your Docker or
# cluster. With CI=true a missing engine fails the run instead of skipping.
set -euo pipefail
SETUP_NAME=test
. "$(dirname "$0")/_setup.sh"
# Docker's engine with runc and containerd, a static BusyBox (the debugger image's stand-in), gcc
# for the shell-less targets, a registry and htpasswd for the pull tests, tmux for the terminal
# tests, qemu-user for the copy keeper of the other architecture, zsh and fish for the
# completion scripts; the Kubernetes tests make certificates with openssl and plumb their network
# with ip. Podman runs rootful and rootless (uidmap's newuidmap, catatonit for its pause process).
need_packages "the tests' engines and fixtures" docker.io busybox-static gcc libc6-dev \
  docker-registry apache2-utils tmux util-linux procps openssl iproute2 qemu-user zsh fish \
  podman uidmap crun conmon catatonit
# The Kubernetes tests build etcd, kube-apiserver, kubelet and kubectl with Go.
PATH="$PATH:/usr/local/go/bin"; export PATH
command -v go >/dev/null 2>&1 || need_packages "the Kubernetes tests build their cluster with Go" golang-go
need_deno
cd "$(dirname "$0")/.."
deno --version | head -n 1
deno task --quiet check
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
deno task --quiet test 2>&1 | tee "$log" || status=$?
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
passed=$(printf '%s' "$summary" | sed -E 's/.* ([0-9]+) passed.*/\1/')
failed=$(printf '%s' "$summary" | sed -E 's/.*\| ([0-9]+) failed.*/\1/')
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
