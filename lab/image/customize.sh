#!/bin/bash
# mmdebstrap customize hook: make the root filesystem look like a cloud image.
set -euo pipefail
root=$1 labroot_tar=$2 here=$3
echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$root/etc/fstab"
echo localhost > "$root/etc/hostname"
# ifupdown as Debian 12 cloud images use it; cloud-init writes interfaces.d/50-cloud-init
cat > "$root/etc/network/interfaces" <<'EOT'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
EOT
mkdir -p "$root/etc/network/interfaces.d"
# The image knows its datasource (a real ECS image pins AliYun; the lab uses NoCloud).
cat > "$root/etc/cloud/cloud.cfg.d/90_lab_datasource.cfg" <<'EOT'
datasource_list: [ NoCloud, None ]
EOT
# Locale cloud-init will ask for (as on Debian's cloud images).
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$root/etc/locale.gen"
chroot "$root" locale-gen >/dev/null
echo 'LANG=en_US.UTF-8' > "$root/etc/default/locale"
# No password logins; the lab drives the VM through qemu-guest-agent.
chroot "$root" passwd -l root >/dev/null
# The lab's tools (peers' strongSwan, nftables, dnsmasq, tcpdump) live apart from the ECS.
mkdir -p "$root/opt/labroot"
tar -C "$root/opt/labroot" -xf "$labroot_tar"
# Early boot hook: builds the lab's network namespaces around the ECS from the
# per-run config disk before cloud-init starts.
install -m 0755 "$here/lab-boot" "$root/usr/local/sbin/lab-boot"
install -m 0644 "$here/lab-boot.service" "$root/etc/systemd/system/lab-boot.service"
chroot "$root" systemctl enable lab-boot.service >/dev/null 2>&1
# Keep journald's log on the disk so a reboot keeps it (as on cloud images).
mkdir -p "$root/var/log/journal"
# The package mirror's content (lab/mirror.py, indexed and signed by mirror.sh): every
# package a gateway's user-data can install, with what the image's apt would add to it: its
# Recommends too (apt's default on the ECS; a recommended package missing here is skipped there
# without a word: strongSwan without its standard plugins negotiates no ECP group). mmdebstrap's
# own apt settings (no recommends) are kept out of the chroot's apt.
mirror=$4
read -ra packages <<< "${MIRROR_PACKAGES:?}"
chroot "$root" apt-get clean  # the image's own packages, which mmdebstrap leaves there until its cleanup
env -u APT_CONFIG chroot "$root" apt-get install --download-only --assume-yes --quiet --quiet \
  -o APT::Install-Recommends=true "${packages[@]}"
mkdir -p "$mirror/debian/pool/main"
mv "$root"/var/cache/apt/archives/*.deb "$mirror/debian/pool/main/"
chroot "$root" apt-get clean
