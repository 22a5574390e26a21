#!/usr/bin/env bash
# Benchmark: a CPU-bound parallel command (`xargs -P 2` running two `dd if=/dev/urandom`) in the
# Debian lab guest with 1 vCPU, then with prae's pre-allocation (vCPU hotplug + online through
# the guest agent), side by side in one run; prints each round and the ratio of the medians.
#
# Needs PRAE_LAB_DEBIAN (tests/lab/build-debian.sh) and a running libvirtd
# (tests/lab/start-libvirtd.sh). PRAE_BENCH_ROUNDS (default 2) and PRAE_BENCH_MIB (MiB of
# random data per worker, default 48) tune it. Timings under TCG on a shared host vary with
# the host's load: quote `uptime` with the result.
set -euo pipefail
cd "$(dirname "$0")/.."
uptime
PRAE_LAB=1 cargo test --quiet --test lab_exec -- --ignored --nocapture --exact \
    vcpu_hotplug_speeds_up_a_parallel_command
uptime
