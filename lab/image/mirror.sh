#!/bin/bash
# The lab's package mirror (lab/mirror.py), from the .debs customize.sh downloaded into
# MIRROR_DIR/debian/pool: a signed apt repository, the image's keyring for it and its
# sources.list (the mirror alone). The signing key is made here and its secret half thrown
# away with the build's temporary GnuPG home.
# Usage: mirror.sh MIRROR_DIR ROOTFS   (MIRROR_* from lab/image.py, see build.sh)
set -euo pipefail
mirror=${1:?usage: mirror.sh MIRROR_DIR ROOTFS} root=${2:?usage: mirror.sh MIRROR_DIR ROOTFS}
dist=dists/$MIRROR_SUITE
bin=$dist/$MIRROR_COMPONENT/binary-$MIRROR_ARCH
cd "$mirror/debian"
compgen -G "pool/$MIRROR_COMPONENT/*.deb" >/dev/null || { echo "mirror.sh: no packages downloaded" >&2; exit 1; }
mkdir -p "$bin"
apt-ftparchive packages "pool/$MIRROR_COMPONENT" > "$bin/Packages"
gzip -9nk "$bin/Packages"
release=$(mktemp)
apt-ftparchive \
  -o APT::FTPArchive::Release::Origin=aws2aliyun-lab -o APT::FTPArchive::Release::Label=aws2aliyun-lab \
  -o "APT::FTPArchive::Release::Suite=$MIRROR_SUITE" -o "APT::FTPArchive::Release::Codename=$MIRROR_SUITE" \
  -o "APT::FTPArchive::Release::Components=$MIRROR_COMPONENT" \
  -o "APT::FTPArchive::Release::Architectures=$MIRROR_ARCH" \
  release "$dist" > "$release"
mv "$release" "$dist/Release"
chmod 0644 "$dist/Release"
GNUPGHOME=$(mktemp -d)
export GNUPGHOME
trap 'gpgconf --kill gpg-agent 2>/dev/null || true; rm -rf "$GNUPGHOME"' EXIT
gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
  --quick-gen-key 'aws2aliyun lab mirror (made with the image)' ed25519 sign never
gpg --batch --quiet --yes --clearsign -o "$dist/InRelease" "$dist/Release"
gpg --batch --quiet --export > "$root$MIRROR_KEYRING"
chmod 0644 "$root$MIRROR_KEYRING"
printf '%s' "$MIRROR_SOURCES_LIST" > "$root/etc/apt/sources.list"
rm -f "$root"/etc/apt/sources.list.d/*.list "$root"/etc/apt/sources.list.d/*.sources
echo "[build] mirror: $(grep -c '^Package:' "$bin/Packages") packages, $(du -sh pool | cut -f1)" >&2
