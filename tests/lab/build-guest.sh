#!/usr/bin/env bash
# Builds the lab's small guest: a Debian cloud kernel plus a busybox initramfs whose /init reports
# what the guest got (online vCPUs, MemTotal) on the serial console.
#
# Output, cached OUTSIDE the repository and keyed by this script's own hash:
#   ${PRAE_LAB_DIR:-/var/tmp/prae-lab}/guest-<sha256 of this script>/
#     vmlinuz      the kernel (direct kernel boot: <kernel>)
#     initrd.img   busybox initramfs, gzip'd newc cpio (<initrd>)
#     manifest     package names and versions, build time
# A present directory is reused as is. The last line printed is the directory.
#
# What the guest does (see INIT below): mounts proc/sysfs/devtmpfs, loads virtio_balloon (so
# balloon changes show in MemTotal), then polls five times a second: onlines every offline CPU
# and memory block (so `setvcpus --live` and DIMM hotplug show up), and prints
#   PRAE nproc=<online cpus> memtotal_kib=<MemTotal> uptime=<s> seq=<n>
# whenever nproc or MemTotal change, and at least every `prae.report=` seconds (default 5).
# A hotplugged CPU is also reported as `PRAE cpu-online id=<n>`. With `prae.poweroff=<s>` on the
# kernel command line it powers off after that many seconds of uptime; the last line it prints
# is `PRAE poweroff`.
#
# Needs: apt-get (Debian archive reachable), dpkg-deb, busybox-static, cpio, gzip.
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
lab_dir=${PRAE_LAB_DIR:-/var/tmp/prae-lab}
hash=$(sha256sum "$script" | cut -d' ' -f1)
out=$lab_dir/guest-$hash

if [ -f "$out/manifest" ]; then
  echo "lab: guest cached"
  echo "$out"
  exit 0
fi

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
  command -v "$tool" >/dev/null || { echo "lab: $tool not found; run tests/lab/install.sh" >&2; exit 1; }
done
# The statically linked busybox from busybox-static (the dynamic one would need its libraries).
busybox=$(dpkg-query -L busybox-static 2>/dev/null | grep -m1 '/bin/busybox$' || true)
[ -n "$busybox" ] && [ -x "$busybox" ] \
  || { echo "lab: busybox-static is not installed; run tests/lab/install.sh" >&2; exit 1; }

mkdir -p "$lab_dir"
exec 9>"$lab_dir/build-guest.lock"
flock 9
if [ -f "$out/manifest" ]; then  # built by a concurrent run while we waited
  echo "$out"
  exit 0
fi

start=$(date +%s%N)
work=$(mktemp -d "$lab_dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The current cloud kernel: the dependency of the linux-image-cloud-amd64 metapackage.
resolve_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null \
    | sed -nE 's/^[[:space:]]*Depends: (linux-image-[0-9][^[:space:]]*-cloud-amd64)$/\1/p' | head -n1
}
kpkg=$(resolve_kernel)
if [ -z "$kpkg" ]; then
  apt-get update -qq
  kpkg=$(resolve_kernel)
fi
[ -n "$kpkg" ] || { echo "lab: cannot resolve the cloud kernel package (linux-image-cloud-amd64)" >&2; exit 1; }

(cd "$work" && apt-get -q -o APT::Sandbox::User=root download "$kpkg" >/dev/null)
deb=$(ls "$work"/"$kpkg"_*.deb)
dpkg-deb -x "$deb" "$work/kernel"
kver=${kpkg#linux-image-}
kvers=$(dpkg-deb -f "$deb" Version)
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"

# The initramfs.
root=$work/initramfs
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
# virtio is modular in the cloud kernel: copy the PCI transport and the balloon driver with
# their dependencies (read from each module's .modinfo), in load order.
mods=()
add_module() {
  local m=$1 f deps d
  case " ${mods[*]} " in *" $m "*) return ;; esac
  f=$(find "$work/kernel/lib/modules/$kver" -name "$m.ko" -print -quit)
  [ -n "$f" ] || { echo "lab: module $m.ko not in $kpkg" >&2; exit 1; }
  deps=$(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | head -n1)
  for d in ${deps//,/ }; do add_module "$d"; done
  cp "$f" "$root/lib/modules/"
  mods+=("$m")
}
add_module virtio_pci
add_module virtio_balloon
printf '%s\n' "${mods[@]}" > "$root/lib/modules/order"

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

poweroff_after=0
report_every=5
for arg in $(cat /proc/cmdline); do
  case $arg in
    prae.poweroff=*) poweroff_after=${arg#prae.poweroff=} ;;
    prae.report=*) report_every=${arg#prae.report=} ;;
  esac
done

for m in $(cat /lib/modules/order); do
  insmod /lib/modules/$m.ko 2>/dev/null
done
balloon=0
[ -d /sys/bus/virtio/drivers/virtio_balloon ] && balloon=1
echo "PRAE ready kernel=$(uname -r) balloon=$balloon poweroff=$poweroff_after"

seq=0
last=""
last_at=0
while :; do
  for c in /sys/devices/system/cpu/cpu[0-9]*; do
    if [ -f "$c/online" ] && [ "$(cat "$c/online")" = 0 ]; then
      echo 1 > "$c/online" && echo "PRAE cpu-online id=${c##*/cpu}"
    fi
  done
  for b in /sys/devices/system/memory/memory[0-9]*; do
    [ -f "$b/state" ] && [ "$(cat "$b/state")" = offline ] && echo online > "$b/state" 2>/dev/null
  done
  up=$(cut -d' ' -f1 /proc/uptime)
  now=${up%.*}
  state="nproc=$(grep -c '^processor' /proc/cpuinfo) memtotal_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  if [ "$state" != "$last" ] || [ $((now - last_at)) -ge "$report_every" ]; then
    seq=$((seq + 1))
    echo "PRAE $state uptime=$up seq=$seq"
    last=$state
    last_at=$now
  fi
  if [ "$poweroff_after" -gt 0 ] && [ "$now" -ge "$poweroff_after" ]; then
    echo "PRAE poweroff"
    break
  fi
  sleep 0.2
done
sync
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0 | gzip -9n) > "$work/initrd.img"

{
  echo "kernel_package=$kpkg"
  echo "kernel_version=$kvers"
  echo "kernel_release=$kver"
  echo "busybox_version=$(dpkg-query -W -f='${Version}' busybox-static)"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
} > "$work/manifest.tmp"

mkdir "$work/out"
mv "$work/vmlinuz" "$work/initrd.img" "$work/out/"
mv "$work/manifest.tmp" "$work/out/manifest"
rm -rf "$out"
mv "$work/out" "$out"
echo "lab: built guest in $(awk -F= '/^build_seconds=/{print $2}' "$out/manifest")s ($kpkg $kvers)"
echo "$out"
