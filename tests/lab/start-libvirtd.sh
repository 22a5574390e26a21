#!/usr/bin/env bash
# Starts the lab's libvirt daemons (virtlogd, then libvirtd) on a machine without systemd.
#
# - Configures /etc/libvirt/qemu.conf for this kind of machine (namespaces = [ ], user and group
#   root), idempotently: a key that already has the wanted value is left alone.
# - Starts virtlogd and libvirtd with -d unless they already run (pid file + kill -0).
# - Records the pids THIS script started in $PRAE_LAB_DIR/started.pids, so stop-libvirtd.sh
#   stops only those, by pid. Daemons found running are left as they are and not recorded.
# - Waits (bounded) until `virsh -c qemu:///system version` answers.
#
# The lab's guests use plain file paths (kernel, initrd, disks, serial log): no storage pool, and
# in particular no `default` pool, is needed; a missing default pool is not an error.
#
# Env: PRAE_LAB_DIR (default /var/tmp/prae-lab), PRAE_LAB_WAIT (seconds, default 30),
# PRAE_LAB_PIDS (the state file; default $PRAE_LAB_DIR/started.pids).
set -euo pipefail

lab_dir=${PRAE_LAB_DIR:-/var/tmp/prae-lab}
wait_secs=${PRAE_LAB_WAIT:-30}
state=${PRAE_LAB_PIDS:-$lab_dir/started.pids}
conf=/etc/libvirt/qemu.conf
uri=qemu:///system

mkdir -p "$lab_dir"
touch "$state"

for tool in virtlogd libvirtd virsh; do
  command -v "$tool" >/dev/null || { echo "lab: $tool not found; run tests/lab/install.sh" >&2; exit 1; }
done
[ -f "$conf" ] || { echo "lab: $conf not found; run tests/lab/install.sh" >&2; exit 1; }

# set_conf KEY VALUE: makes the active `KEY = VALUE` line of qemu.conf exactly that.
# Prints "changed" when it edited the file.
set_conf() {
  local key=$1 value=$2 active
  active=$(grep -E "^[[:space:]]*$key[[:space:]]*=" "$conf" || true)
  [ "$active" = "$key = $value" ] && return
  sed -i -E "/^[[:space:]]*$key[[:space:]]*=/d" "$conf"
  printf '%s = %s\n' "$key" "$value" >> "$conf"
  echo changed
}

changed=""
changed+=$(set_conf namespaces '[ ]')
changed+=$(set_conf user '"root"')
changed+=$(set_conf group '"root"')

# running NAME PIDFILE: prints the pid when the daemon in PIDFILE is alive and is NAME.
running() {
  local name=$1 pidfile=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(tr -dc '0-9' < "$pidfile")
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  echo "$pid"
}

# ours NAME PID: true when the state file says this script started PID as NAME.
ours() { grep -qxF "$1 $2" "$state"; }

# start NAME PIDFILE: starts NAME -d unless running; records the new pid.
start() {
  local name=$1 pidfile=$2 pid i
  if pid=$(running "$name" "$pidfile"); then
    echo "lab: $name already running (pid $pid)"
    return
  fi
  "$name" -d
  for ((i = 0; i < wait_secs * 10; i++)); do
    if pid=$(running "$name" "$pidfile"); then
      echo "$name $pid" >> "$state"
      echo "lab: started $name (pid $pid)"
      return
    fi
    sleep 0.1
  done
  echo "lab: $name did not write $pidfile within ${wait_secs}s" >&2
  exit 1
}

# qemu.conf is read when libvirtd starts: a running libvirtd that this script started is
# restarted after a change; one started by someone else is only warned about.
if [ -n "$changed" ] && pid=$(running libvirtd /run/libvirtd.pid); then
  if ours libvirtd "$pid"; then
    echo "lab: $conf changed; restarting libvirtd (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < wait_secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "lab: libvirtd $pid did not stop" >&2; exit 1; }
    sed -i "/^libvirtd $pid\$/d" "$state"
  else
    echo "lab: warning: $conf changed but libvirtd (pid $pid) was not started by this script;" \
      "restart it for the change to apply" >&2
  fi
fi

start virtlogd /run/virtlogd.pid
start libvirtd /run/libvirtd.pid

for ((i = 0; i < wait_secs * 10; i++)); do
  if virsh -c "$uri" version >/dev/null 2>&1; then
    virsh -c "$uri" version | sed -e '/^$/d' -e 's/^/lab: /'
    exit 0
  fi
  sleep 0.1
done
echo "lab: $uri did not answer within ${wait_secs}s" >&2
virsh -c "$uri" version >&2 || true
exit 1
