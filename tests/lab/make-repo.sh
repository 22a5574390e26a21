#!/usr/bin/env bash
# Usage: make-repo.sh PKG...
#
# Builds an offline apt repository disk for the lab's Debian 12 guest (build-debian.sh): an ext4
# image (label repo, no partition table) holding the .debs the guest needs to install PKG... on
# top of its base, plus a flat `Packages` index. In the guest:
#   mount -o ro /dev/vdb /mnt/repo
#   echo 'deb [trusted=yes] file:/mnt/repo ./' > /etc/apt/sources.list   # the only source
#   apt-get update && apt-get install -y PKG...
#
# The dependency closure is resolved against the base: a throwaway copy of the base's rootfs
# (the cached rootfs/ is never changed) gets `apt-get update` and
# `apt-get install --download-only -y PKG...` in a chroot (Recommends included, as the guest's
# apt-get install will want them), and what lands in its archive cache is the repository.
#
# Output, cached OUTSIDE the repository and keyed by this script's hash, the base directory and
# the sorted package list:
#   ${PRAE_LAB_DIR:-/var/tmp/prae-lab}/repo-<sha256>/
#     repo.img   the disk (raw ext4); attach it at define time, read-only use in the guest
#     debs       one line per .deb: package version size-in-bytes
#     manifest   requested packages, base directory, sizes, measured times; written last
# A complete directory is reused as is; a build runs in a temporary directory renamed into
# place at the end. The last line printed is the directory.
#
# Package names are checked against Debian policy ([a-z0-9][a-z0-9+.-]+) before anything runs
# and are only ever passed as separate arguments, never through a shell string.
#
# Env: PRAE_LAB_DIR; PRAE_LAB_DEBIAN (the directory build-debian.sh printed; when unset,
# build-debian.sh is run, which is instant when its image is cached). Needs root (chroot),
# network access to the Debian archive, dpkg-dev (dpkg-scanpackages), e2fsprogs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script=$(readlink -f "${BASH_SOURCE[0]}")
lab_dir=${PRAE_LAB_DIR:-/var/tmp/prae-lab}

if [ $# -eq 0 ]; then
  echo "usage: make-repo.sh PKG..." >&2
  exit 2
fi
for p in "$@"; do
  if ! [[ $p =~ ^[a-z0-9][a-z0-9+.-]+$ ]]; then
    printf 'lab: invalid package name %q (Debian policy: [a-z0-9][a-z0-9+.-]+)\n' "$p" >&2
    exit 2
  fi
done
mapfile -t pkgs < <(printf '%s\n' "$@" | LC_ALL=C sort -u)

[ "$(id -u)" = 0 ] || { echo "lab: make-repo.sh needs root (chroot)" >&2; exit 1; }
for tool in dpkg-scanpackages mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "lab: $tool not found; run tests/lab/build-debian.sh" >&2; exit 1; }
done

base=${PRAE_LAB_DEBIAN:-}
if [ -z "$base" ]; then
  base=$("$here/build-debian.sh" | tail -n1)
fi
base=$(readlink -f "$base")
[ -f "$base/manifest" ] && [ -d "$base/rootfs" ] \
  || { echo "lab: $base is not a complete build-debian.sh directory (manifest, rootfs/)" >&2; exit 1; }

key=$({ sha256sum "$script" | cut -d' ' -f1; basename "$base"; printf '%s\n' "${pkgs[@]}"; } \
  | sha256sum | cut -d' ' -f1)
out=$lab_dir/repo-$key

if [ -f "$out/manifest" ]; then
  echo "lab: repository cached (${pkgs[*]})"
  echo "$out"
  exit 0
fi

mkdir -p "$lab_dir"
exec 9>"$lab_dir/make-repo.lock"
flock 9
if [ -f "$out/manifest" ]; then  # built by a concurrent run while we waited
  echo "$out"
  exit 0
fi

# remove_tree DIR: removes a build tree without ever leaving its file system (nothing is
# mounted in the chroot, but a tree from elsewhere must never take a host mount with it).
remove_tree() {
  [ -e "$1" ] || return 0
  rm -rf --one-file-system "$1"
}
for stale in "$lab_dir"/repo-build.*; do
  [ -e "$stale" ] || continue
  echo "lab: removing the leftover $stale"
  remove_tree "$stale"
done

seconds_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
start=$(date +%s%N)
work=$(mktemp -d "$lab_dir/repo-build.XXXXXX")
trap 'remove_tree "$work"' EXIT
root=$work/rootfs

# A throwaway copy of the base (reflinked where the file system can, else copied).
t=$(date +%s%N)
cp -a --reflink=auto "$base/rootfs" "$root"
copy_s=$(seconds_since "$t")
# Name resolution for apt in the chroot; its sources list is the one debootstrap wrote.
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

t=$(date +%s%N)
chroot "$root" apt-get clean
if ! chroot "$root" apt-get update -qq > "$work/apt.log" 2>&1; then
  cat "$work/apt.log" >&2
  echo "lab: apt-get update in the base's chroot failed" >&2
  exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install --download-only -y -q "${pkgs[@]}" \
    > "$work/apt.log" 2>&1; then
  grep -E '^(E|W):' "$work/apt.log" >&2 || tail -n 20 "$work/apt.log" >&2
  echo "lab: cannot resolve ${pkgs[*]} against the base" >&2
  exit 1
fi
download_s=$(seconds_since "$t")

repo=$work/repo
mkdir "$repo"
shopt -s nullglob
debs=("$root"/var/cache/apt/archives/*.deb)
shopt -u nullglob
[ ${#debs[@]} -eq 0 ] || mv "${debs[@]}" "$repo/"
(cd "$repo" && dpkg-scanpackages . /dev/null > Packages 2>/dev/null)
for d in "$repo"/*.deb; do
  [ -e "$d" ] || continue
  printf '%s %s %s\n' "$(dpkg-deb -f "$d" Package)" "$(dpkg-deb -f "$d" Version)" "$(stat -c %s "$d")"
done | LC_ALL=C sort > "$work/debs"

# Size: the files plus a quarter and 16 MiB for ext4's own structures.
repo_kib=$(du -sk "$repo" | cut -f1)
size_mib=$(( (repo_kib * 5 / 4) / 1024 + 16 ))
t=$(date +%s%N)
mkfs.ext4 -q -F -d "$repo" -L repo "$work/repo.img" "${size_mib}M" >/dev/null
image_s=$(seconds_since "$t")

{
  echo "packages=${pkgs[*]}"
  echo "base=$(basename "$base")"
  echo "debs=$(wc -l < "$work/debs")"
  echo "deb_bytes=$(awk '{ s += $3 } END { print s + 0 }' "$work/debs")"
  echo "image_mib=$size_mib"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "copy_seconds=$copy_s"
  echo "download_seconds=$download_s"
  echo "image_seconds=$image_s"
  echo "build_seconds=$(seconds_since "$start")"
} > "$work/manifest.tmp"

mkdir "$work/out"
mv "$work/repo.img" "$work/debs" "$work/out/"
mv "$work/manifest.tmp" "$work/out/manifest"
remove_tree "$out"
mv "$work/out" "$out"
echo "lab: repository for ${pkgs[*]}: $(wc -l < "$out/debs") .debs," \
  "$(awk -F= '/^deb_bytes=/{print $2}' "$out/manifest") bytes, built in" \
  "$(awk -F= '/^build_seconds=/{print $2}' "$out/manifest")s"
echo "$out"
