#!/bin/sh
# peer.sh start N | exec N CMD... | stop N
# One AWS-like charon per namespace aws<N>, from the chroot /opt/labroot, with its own
# /etc/swanctl, /etc/strongswan.conf and /run (a private mount namespace).
set -u
cmd=$1 n=$2
shift 2
root=/opt/labroot
dir=/run/lab/peer/aws$n
pidfile=/run/lab/peer/aws$n.pid
L=/run/lab/log
case $cmd in
start)
  mkdir -p "$dir/swanctl"
  for d in conf.d x509 x509ca x509aa x509ocsp x509crl x509ac pubkey private rsa ecdsa bliss pkcs8 pkcs12; do
    mkdir -p "$dir/swanctl/$d"
  done
  cp "/run/lab/aws$n.swanctl.conf" "$dir/swanctl/swanctl.conf"
  cp /run/lab/peer-strongswan.conf "$dir/strongswan.conf"
  rm -f "$pidfile"
  ip netns exec "aws$n" unshare -m --propagation private /bin/sh -c '
    echo $$ > '"$pidfile"'
    mount -t tmpfs tmpfs '"$root"'/run
    mount --bind '"$dir"'/swanctl '"$root"'/etc/swanctl
    mount --bind '"$dir"'/strongswan.conf '"$root"'/etc/strongswan.conf
    mount -t proc proc '"$root"'/proc
    mount --rbind /dev '"$root"'/dev
    mount --rbind /sys '"$root"'/sys
    exec chroot '"$root"' /usr/lib/ipsec/charon' >>"$L/aws$n-charon.log" 2>&1 </dev/null &
  i=0
  while [ $i -lt 200 ]; do
    # Ready once charon itself runs in the chroot: its own pid file in its private /run.
    # (Before the chroot, /proc/PID/root is the ECS's root, whose /run/charon.vici is the
    # ECS's own daemon once cloud-init has installed strongSwan.)
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/root/run/charon.pid" 2>/dev/null)" = "$pid" ] \
      && [ -S "/proc/$pid/root/run/charon.vici" ]; then
      /bin/sh "$0" exec "$n" swanctl --load-all --noprompt >>"$L/aws$n-swanctl.log" 2>&1
      exit $?
    fi
    sleep 0.1; i=$((i + 1))
  done
  echo "aws$n: charon did not come up" >>"$L/aws$n-swanctl.log"
  exit 1
  ;;
exec)
  exec nsenter -t "$(cat "$pidfile")" -m -n -r -w "$@"
  ;;
stop)
  [ -s "$pidfile" ] && kill "$(cat "$pidfile")"
  ;;
esac
