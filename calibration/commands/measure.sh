#!/usr/bin/env bash
# Measures the command calibration table in the lab: boots the Debian lab guest, runs each
# command of tests/lab_exec.rs `calibrate_commands` twice through prae's orchestrator (no
# pre-allocation) and prints the table (header and rows) on stdout.
#
# Needs PRAE_LAB_DEBIAN (tests/lab/build-debian.sh) and a running libvirtd
# (tests/lab/start-libvirtd.sh). Usage: calibration/commands/measure.sh > rows.tsv
set -euo pipefail
cd "$(dirname "$0")/../.."
PRAE_LAB=1 cargo test --quiet --test lab_exec -- --ignored --nocapture --exact calibrate_commands \
    | sed -n 's/^ROW\t//p'
