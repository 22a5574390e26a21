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

state=${PRAE_LAB_DIR:-/var/tmp/prae-lab}/started.pids
before=$(cat "$state" 2>/dev/null || true)
"$here/start-libvirtd.sh"
after=$(cat "$state" 2>/dev/null || true)
status=0
PRAE_LAB=1 cargo test --test corpus qemu_system_relative -- --nocapture "$@" || status=$?
# Stop daemons only when this run started them (the state file grew).
if [ "$before" != "$after" ]; then
  "$here/stop-libvirtd.sh"
fi
exit $status
