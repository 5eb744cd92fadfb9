#!/bin/bash
# Build the lab's Debian 12 image with Debian's own tools (mmdebstrap, mkfs.ext4 -d).
# Usage: build.sh OUT_DIR   (writes disk.raw, vmlinuz, initrd.img, manifest.txt, mirror/)
# Called by lab/image.py, which caches OUT_DIR keyed by the hash of this directory and of the
# MIRROR_* variables it sets (lab/mirror.py): the packages the gateways' user-data installs,
# downloaded into a signed apt repository that is the image's only apt source.
set -euo pipefail
out=${1:?usage: build.sh OUT_DIR}
: "${MIRROR_PACKAGES:?} ${MIRROR_SOURCES_LIST:?} ${MIRROR_KEYRING:?} ${MIRROR_SUITE:?}"
: "${MIRROR_COMPONENT:?} ${MIRROR_ARCH:?}"
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirrors=(
  "deb http://deb.debian.org/debian $suite main"
  "deb http://deb.debian.org/debian $suite-updates main"
  "deb http://deb.debian.org/debian-security $suite-security main"
)
pkgs() { grep -v -e '^#' -e '^[[:space:]]*$' "$1" | paste -sd, -; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/aws2aliyun-lab-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
slim=(--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
      --dpkgopt='path-include=/usr/share/doc/*/copyright')

echo "[build] lab tools chroot (AWS-like peers' strongSwan, nftables, dnsmasq, tcpdump)" >&2
mmdebstrap --quiet --variant=essential --include="$(pkgs "$here/packages-labroot.txt")" \
  "${slim[@]}" "$suite" "$work/labroot.tar" "${mirrors[@]}"

echo "[build] ECS root filesystem" >&2
mmdebstrap --quiet --variant=apt --include="$(pkgs "$here/packages-ecs.txt")" \
  "${slim[@]}" \
  --customize-hook="\"$here/customize.sh\" \"\$1\" \"$work/labroot.tar\" \"$here\" \"$work/mirror\"" \
  "$suite" "$work/rootfs" "${mirrors[@]}"

echo "[build] package mirror: $MIRROR_PACKAGES and their dependencies" >&2
"$here/mirror.sh" "$work/mirror" "$work/rootfs"

echo "[build] kernel, initrd, ext4 disk" >&2
mkdir -p "$work/out"
cp "$(ls "$work"/rootfs/boot/vmlinuz-* | sort -V | tail -1)" "$work/out/vmlinuz"
cp "$(ls "$work"/rootfs/boot/initrd.img-* | sort -V | tail -1)" "$work/out/initrd.img"
chroot "$work/rootfs" dpkg-query -W -f '${Package} ${Version}\n' > "$work/out/manifest.txt"
mv "$work/mirror" "$work/out/mirror"
mkfs.ext4 -q -L root -E root_owner=0:0 -d "$work/rootfs" "$work/out/disk.raw" 4G
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$work/out" "$out"
echo "[build] done: $out" >&2
