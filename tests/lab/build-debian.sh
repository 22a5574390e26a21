#!/usr/bin/env bash
# Builds the lab's image-build guest: a Debian 12 (bookworm) base image made from Debian's own
# packages with debootstrap, booted with direct kernel boot (the rootfs's own kernel and initrd)
# and answering on the QEMU guest agent.
#
# Output, cached OUTSIDE the repository and keyed by this script's own hash:
#   ${PRAE_LAB_DIR:-/var/tmp/prae-lab}/debian12-<sha256 of this script>/
#     base.qcow2   the root filesystem (ext4, label root, no partition table: root=/dev/vda);
#                  guests run on a qcow2 overlay of it, never on it
#     vmlinuz      the rootfs's /boot/vmlinuz-*     (<kernel>)
#     initrd.img   the rootfs's /boot/initrd.img-*  (<initrd>)
#     rootfs/      the debootstrap'd tree base.qcow2 was made from (make-repo.sh resolves
#                  package dependencies against a throwaway copy of it)
#     packages     dpkg -l of the rootfs (name version), what the base holds
#     manifest     versions and measured times; written last
# A complete directory (it has a manifest) is reused as is. A build runs in a temporary
# directory beside it and is renamed into place at the end, so a killed build leaves no half
# cache (and the next run removes its temporary directory). The last line printed is the
# directory.
#
# The guest: debootstrap --variant=minbase with qemu-guest-agent, linux-image-cloud-amd64,
# systemd-sysv, udev and dbus; fstab `/dev/vda / ext4 defaults 0 1`, hostname prae-debian12,
# root without a password; the periodic maintenance units (apt-daily, dpkg-db-backup, e2scrub,
# fstrim) masked. Debian ships qemu-guest-agent.service as a static unit that udev
# starts when the virtio-serial port org.qemu.guest_agent.0 appears (the domain needs that
# <channel>); this script checks the rule is there.
#
# Debian's mirror is debootstrap's built-in default; no mirror name is written anywhere here.
# Needs root, network access to the Debian archive, debootstrap, e2fsprogs (mkfs.ext4 -d),
# qemu-utils; missing Debian packages are installed with apt-get.
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
lab_dir=${PRAE_LAB_DIR:-/var/tmp/prae-lab}
hash=$(sha256sum "$script" | cut -d' ' -f1)
out=$lab_dir/debian12-$hash
suite=bookworm
include=qemu-guest-agent,linux-image-cloud-amd64,systemd-sysv,udev,dbus
image_size=2G

if [ -f "$out/manifest" ]; then
  echo "lab: debian12 image cached"
  echo "$out"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "lab: build-debian.sh needs root (debootstrap, chroot)" >&2; exit 1; }

# Tools, from Debian packages: command -> package.
declare -A tool_pkg=([debootstrap]=debootstrap [dpkg-scanpackages]=dpkg-dev
                     [mkfs.ext4]=e2fsprogs [qemu-img]=qemu-utils)
missing=()
for tool in "${!tool_pkg[@]}"; do
  command -v "$tool" >/dev/null || missing+=("${tool_pkg[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "lab: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

mkdir -p "$lab_dir"
exec 9>"$lab_dir/build-debian.lock"
flock 9
if [ -f "$out/manifest" ]; then  # built by a concurrent run while we waited
  echo "$out"
  exit 0
fi

# umount_under DIR: unmounts whatever is mounted below DIR (debootstrap mounts proc and sys in
# the target while it runs; a killed run leaves them), deepest first.
umount_under() {
  local dir m
  dir=$(readlink -f "$1")
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}
# remove_tree DIR: removes a build tree without ever leaving its file system.
remove_tree() {
  [ -e "$1" ] || return 0
  umount_under "$1"
  rm -rf --one-file-system "$1"
}

# Leftovers of killed builds (we hold the lock: none is running).
for stale in "$lab_dir"/debian12-build.*; do
  [ -e "$stale" ] || continue
  echo "lab: removing the leftover $stale"
  remove_tree "$stale"
done

start=$(date +%s%N)
work=$(mktemp -d "$lab_dir/debian12-build.XXXXXX")
trap 'remove_tree "$work"' EXIT
rootfs=$work/rootfs

seconds_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

echo "lab: debootstrap $suite (minbase + $include)"
t=$(date +%s%N)
debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" > "$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; echo "lab: debootstrap failed" >&2; exit 1; }
umount_under "$rootfs"
debootstrap_s=$(seconds_since "$t")
echo "lab: debootstrap took ${debootstrap_s}s"

# Configuration.
echo '/dev/vda / ext4 defaults 0 1' > "$rootfs/etc/fstab"
echo prae-debian12 > "$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tprae-debian12\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
  > "$rootfs/etc/hosts"
chroot "$rootfs" passwd -d root >/dev/null
: > "$rootfs/etc/resolv.conf"  # debootstrap copied the host's; the guest has no network
chroot "$rootfs" apt-get clean
# Periodic maintenance would add noise to a build's measured usage and could hold the dpkg lock
# while a build installs: masked. (The guest has no network: nothing to update from anyway.)
chroot "$rootfs" systemctl mask --quiet apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer
# The guest agent: a static unit, started by udev on its virtio-serial port.
rule=$(grep -l 'org.qemu.guest_agent.0' "$rootfs"/lib/udev/rules.d/*.rules "$rootfs"/usr/lib/udev/rules.d/*.rules 2>/dev/null | head -n1 || true)
[ -n "$rule" ] || { echo "lab: no udev rule starts qemu-guest-agent in the rootfs" >&2; exit 1; }
grep -q 'qemu-guest-agent.service' "$rule" \
  || { echo "lab: $rule does not start qemu-guest-agent.service" >&2; exit 1; }
[ -x "$rootfs/usr/sbin/qemu-ga" ] || { echo "lab: qemu-ga missing from the rootfs" >&2; exit 1; }

# Kernel and initrd: the rootfs's own (exactly one of each).
kernels=("$rootfs"/boot/vmlinuz-*)
initrds=("$rootfs"/boot/initrd.img-*)
[ ${#kernels[@]} = 1 ] && [ -f "${kernels[0]}" ] \
  || { echo "lab: expected one /boot/vmlinuz-* in the rootfs, found: ${kernels[*]}" >&2; exit 1; }
[ ${#initrds[@]} = 1 ] && [ -f "${initrds[0]}" ] \
  || { echo "lab: expected one /boot/initrd.img-* in the rootfs, found: ${initrds[*]}" >&2; exit 1; }
kernel_release=${kernels[0]##*/vmlinuz-}
cp "${kernels[0]}" "$work/vmlinuz"
cp "${initrds[0]}" "$work/initrd.img"
chroot "$rootfs" dpkg-query -W -f='${Package} ${Version}\n' | sort > "$work/packages"

echo "lab: making the image"
t=$(date +%s%N)
mkfs.ext4 -q -F -d "$rootfs" -L root "$work/root.img" "$image_size" >/dev/null
qemu-img convert -O qcow2 "$work/root.img" "$work/base.qcow2"
rm -f "$work/root.img"
image_s=$(seconds_since "$t")

{
  echo "suite=$suite"
  echo "variant=minbase"
  echo "include=$include"
  echo "kernel_release=$kernel_release"
  echo "kernel_version=$(awk '$1 == "linux-image-'"$kernel_release"'" { print $2 }' "$work/packages")"
  echo "qemu_guest_agent_version=$(awk '$1 == "qemu-guest-agent" { print $2 }' "$work/packages")"
  echo "packages=$(wc -l < "$work/packages")"
  echo "rootfs_bytes=$(du -sb "$rootfs" | cut -f1)"
  echo "image_size=$image_size"
  echo "base_qcow2_bytes=$(stat -c %s "$work/base.qcow2")"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "debootstrap_seconds=$debootstrap_s"
  echo "image_seconds=$image_s"
  echo "build_seconds=$(seconds_since "$start")"
} > "$work/manifest.tmp"

mkdir "$work/out"
mv "$rootfs" "$work/vmlinuz" "$work/initrd.img" "$work/base.qcow2" "$work/packages" "$work/out/"
mv "$work/manifest.tmp" "$work/out/manifest"
remove_tree "$out"  # an incomplete directory of the same name (no manifest): not ours to keep
mv "$work/out" "$out"
echo "lab: built the debian12 image in $(awk -F= '/^build_seconds=/{print $2}' "$out/manifest")s" \
  "(debootstrap ${debootstrap_s}s, image ${image_s}s, kernel $kernel_release)"
echo "$out"
