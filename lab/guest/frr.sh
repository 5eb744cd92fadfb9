#!/bin/sh
# frr.sh start NS | exec NS CMD... | stop NS
# FRR (zebra and bgpd) in namespace NS (aws1, aws2, awsrouter) on a `routing: bgp` stack, from
# the chroot /opt/labroot, with its own /etc/frr and /run (a private mount namespace), so each
# speaker has its own sockets. Configuration: /run/lab/NS.zebra.conf and NS.bgpd.conf.
set -u
cmd=$1 ns=$2
shift 2
root=/opt/labroot
dir=/run/lab/frr/$ns
pidfile=/run/lab/frr/$ns.pid # bgpd (the chrooted process `exec` reaches)
zpidfile=/run/lab/frr/$ns.zebra.pid
L=/run/lab/log
case $cmd in
start)
  mkdir -p "$dir"
  cp "/run/lab/$ns.zebra.conf" "$dir/zebra.conf"
  cp "/run/lab/$ns.bgpd.conf" "$dir/bgpd.conf"
  : >"$dir/vtysh.conf" # vtysh's own (empty: the daemons keep their files)
  rm -f "$pidfile" "$zpidfile"
  ip netns exec "$ns" unshare -m --propagation private /bin/sh -c '
    mount -t tmpfs tmpfs '"$root"'/run
    mkdir -p '"$root"'/run/frr
    chroot '"$root"' chown frr:frr /run/frr
    mount --bind '"$dir"' '"$root"'/etc/frr
    mount -t proc proc '"$root"'/proc
    mount --rbind /dev '"$root"'/dev
    mount --rbind /sys '"$root"'/sys
    chroot '"$root"' /usr/lib/frr/zebra -f /etc/frr/zebra.conf >>'"$L/$ns-zebra.log"' 2>&1 &
    echo $! > '"$zpidfile"'
    echo $$ > '"$pidfile"'
    exec chroot '"$root"' /usr/lib/frr/bgpd -f /etc/frr/bgpd.conf' >>"$L/$ns-bgpd.log" 2>&1 </dev/null &
  i=0
  while [ $i -lt 200 ]; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    # ready once bgpd answers on its own vty socket in its private /run
    if [ -n "$pid" ] && [ -S "/proc/$pid/root/run/frr/bgpd.vty" ]; then
      exit 0
    fi
    sleep 0.1; i=$((i + 1))
  done
  echo "$ns: bgpd did not come up" >>"$L/$ns-bgpd.log"
  exit 1
  ;;
exec)
  exec nsenter -t "$(cat "$pidfile")" -m -n -r -w "$@"
  ;;
stop)
  for f in "$pidfile" "$zpidfile"; do
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  i=0
  while [ $i -lt 50 ] && { kill -0 "$(cat "$pidfile")" 2>/dev/null || kill -0 "$(cat "$zpidfile")" 2>/dev/null; }; do
    sleep 0.1; i=$((i + 1))
  done
  rm -f "$pidfile" "$zpidfile"
  ;;
esac
