#!/usr/bin/env bash
# The corpus check against a real libvirtd: every x86 QEMU/KVM domain of the shipped corpus (and
# of ../shared/corpus/libvirt-domains when present) that `qemu:///system` defines before prae's
# rewrite must be defined after it. Domains are defined and undefined, never started.
#
# Starts libvirtd with start-libvirtd.sh (a daemon already running is used and left alone), runs
# `cargo test --test corpus qemu_system_relative` with PRAE_LAB=1, then, only when this run
# started a daemon, stops it with stop-libvirtd.sh, also when the test fails. Extra arguments go
# to cargo test after `--`.
#
# Env: as start-libvirtd.sh (PRAE_LAB_DIR, PRAE_LAB_WAIT); CARGO_TARGET_DIR as usual.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."

# A state file of this run's own: stop-libvirtd.sh then stops only what this run started.
PRAE_LAB_PIDS=$(mktemp)
export PRAE_LAB_PIDS
"$here/start-libvirtd.sh"
status=0
PRAE_LAB=1 cargo test --test corpus qemu_system_relative -- --nocapture "$@" || status=$?
"$here/stop-libvirtd.sh"
rm -f "$PRAE_LAB_PIDS"
exit $status
