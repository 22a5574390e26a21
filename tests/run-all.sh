#!/usr/bin/env bash
# Every check prae has, on a fresh Debian 12 machine (run as root: it installs packages and starts
# a libvirtd): installs libvirt + QEMU, starts libvirtd/virtlogd, builds (or reuses) the cached lab
# guest, then runs formatting, clippy and all tests — unit, test:///default, corpus and the lab
# tests on a real QEMU guest under qemu:///system. Stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
step() { printf '== %s (%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

step "install libvirt and QEMU"
bash tests/lab/install.sh

step "start libvirtd"
# This run's own record of what it started, so the stop below stops only that.
PRAE_LAB_PIDS=$(mktemp)
export PRAE_LAB_PIDS
trap 'bash tests/lab/stop-libvirtd.sh; rm -f "$PRAE_LAB_PIDS"' EXIT
bash tests/lab/start-libvirtd.sh

step "build the lab guest"
guest=$(bash tests/lab/build-guest.sh | tail -n 1)
export PRAE_LAB=1 PRAE_LAB_GUEST="$guest"

step "build the Debian 12 image-build guest"
debian=$(bash tests/lab/build-debian.sh | tail -n 1)
export PRAE_LAB_DEBIAN="$debian"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --quiet 2>&1

step "done"
