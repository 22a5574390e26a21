#!/usr/bin/env bash
# Installs libvirt + QEMU (TCG) and the tools the lab and the corpus checks need, on Debian 12.
#
# The machine may already carry qemu-utils from bookworm-backports, which conflicts with bookworm's
# qemu-system-x86 7.2; so backports is enabled on the existing Debian sources entry and the whole
# stack comes from there (libvirt 11.3, QEMU 10.0). Idempotent: a second run changes nothing.
set -euo pipefail

need=(libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-driver-storage
      libvirt-daemon-driver-network libvirt-clients libvirt-daemon-system-sysv qemu-system-x86 qemu-utils
      pkg-config busybox-static cpio xz-utils libxml2-utils)

missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "lab: all packages present"
  exit 0
fi
echo "lab: installing ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ] && ! grep -q 'bookworm-backports' "$src"; then
  # Only the first Suites: line (the main archive, not the security one) gains backports.
  sed -i '0,/^Suites: bookworm bookworm-updates$/s//Suites: bookworm bookworm-updates bookworm-backports/' "$src"
fi
if [ ! -f "$src" ] && [ -f /etc/apt/sources.list ] && ! grep -q bookworm-backports /etc/apt/sources.list; then
  line=$(grep -m1 -E '^deb .* bookworm main' /etc/apt/sources.list | sed 's/ bookworm main/ bookworm-backports main/')
  [ -n "$line" ] && echo "$line" >> /etc/apt/sources.list
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends -t bookworm-backports "${missing[@]}" >/dev/null
echo "lab: installed"
