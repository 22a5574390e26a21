#!/usr/bin/env bash
# Stops the libvirt daemons that start-libvirtd.sh started, and only those, by pid.
#
# Before stopping a libvirtd it started, it destroys the lab's own leftover domains (names
# starting with `prae-lab-`) through libvirt, so no QEMU process outlives the lab. Daemons that
# were already running when start-libvirtd.sh ran are not in the state file and are left alone.
# Idempotent: with nothing recorded it does nothing.
#
# Env: PRAE_LAB_DIR (default /var/tmp/prae-lab), PRAE_LAB_WAIT (seconds, default 30),
# PRAE_LAB_PIDS (the state file; default $PRAE_LAB_DIR/started.pids).
set -euo pipefail

lab_dir=${PRAE_LAB_DIR:-/var/tmp/prae-lab}
wait_secs=${PRAE_LAB_WAIT:-30}
state=${PRAE_LAB_PIDS:-$lab_dir/started.pids}
uri=qemu:///system

if [ ! -s "$state" ]; then
  echo "lab: nothing recorded in $state; nothing to stop"
  exit 0
fi

# alive NAME PID: the process exists and is still NAME (guards against a reused pid).
alive() { kill -0 "$2" 2>/dev/null && [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]; }

cleanup_lab_domains() {
  local d
  virsh -c "$uri" version >/dev/null 2>&1 || return 0
  while read -r d; do
    case $d in
      prae-lab-*)
        echo "lab: removing leftover domain $d"
        virsh -c "$uri" destroy "$d" >/dev/null 2>&1 || true
        virsh -c "$uri" undefine "$d" >/dev/null 2>&1 || true
        ;;
    esac
  done < <(virsh -c "$uri" list --all --name 2>/dev/null || true)
}

stop_pid() {
  local name=$1 pid=$2 i
  if ! alive "$name" "$pid"; then
    echo "lab: $name (pid $pid) is not running any more"
    return
  fi
  kill -TERM "$pid"
  for ((i = 0; i < wait_secs * 10; i++)); do
    alive "$name" "$pid" || { echo "lab: stopped $name (pid $pid)"; return; }
    sleep 0.1
  done
  echo "lab: $name (pid $pid) ignored SIGTERM for ${wait_secs}s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# libvirtd first (it holds virtlogd's socket), then virtlogd.
for name in libvirtd virtlogd; do
  while read -r n pid; do
    [ "$n" = "$name" ] || continue
    if [ "$name" = libvirtd ] && alive libvirtd "$pid"; then
      cleanup_lab_domains
    fi
    stop_pid "$name" "$pid"
  done < "$state"
done
rm -f "$state"
