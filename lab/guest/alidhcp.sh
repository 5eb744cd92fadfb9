#!/bin/sh
# alidhcp.sh start|restart MAC
# The vSwitch's DHCP server in the Alibaba router: hands the ECS's fixed private address
# (PRIVATE_IP) to the instance whose NIC has MAC, as Alibaba Cloud does. `restart MAC`: the
# instance was replaced (a new NIC, a new MAC): the old lease is forgotten, the new MAC gets
# the same address.
set -eu
. /run/lab/lab.env
L=/run/lab/log
pidfile=/run/lab/dnsmasq.pid
cmd=$1 mac=$2
if [ "$cmd" = restart ] && [ -s "$pidfile" ]; then
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
echo "$(date +%T) alidhcp: $cmd, $PRIVATE_IP for $mac" >>"$L/dnsmasq.log"
ip netns exec alirouter chroot /opt/labroot dnsmasq --conf-file=/dev/null --port=0 --interface=vsw0 \
  --bind-interfaces --dhcp-authoritative --dhcp-range="${VSW_CIDR%/*},static,$VSW_NETMASK,12h" \
  --dhcp-host="$mac,$PRIVATE_IP" --dhcp-option=option:router,"$VSW_GW" \
  --dhcp-option=option:dns-server,"$SLIRP_DNS" --leasefile-ro --user=root --group=root \
  --pid-file=/run/lab-dnsmasq.pid --log-dhcp --log-facility=- --keep-in-foreground >>"$L/dnsmasq.log" 2>&1 </dev/null &
echo $! >"$pidfile"
