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
