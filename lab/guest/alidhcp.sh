#!/bin/sh
# alidhcp.sh start | restart MAC [ADDRESS]
# The vSwitch's DHCP server in the Alibaba router: hands every instance its fixed private
# address by its NIC's MAC (DHCP_HOSTS: "MAC,ADDRESS ..."), as Alibaba Cloud does.
# `restart MAC [ADDRESS]`: the instance at ADDRESS (default PRIVATE_IP, the ECS) was replaced
# (a new NIC, a new MAC): the old lease is forgotten, the new MAC gets the same address.
set -eu
. /run/lab/lab.env
L=/run/lab/log
pidfile=/run/lab/dnsmasq.pid
hosts=/opt/labroot/run/lab-dhcp-hosts  # /run/lab-dhcp-hosts to dnsmasq in its chroot
cmd=$1
if [ "$cmd" = start ] || [ ! -s "$hosts" ]; then
  for h in $DHCP_HOSTS; do echo "$h"; done >"$hosts"
fi
if [ "$cmd" = restart ]; then
  mac=$2 addr=${3:-$PRIVATE_IP}
  { grep -v ",$addr\$" "$hosts" || true; echo "$mac,$addr"; } >"$hosts.new" && mv "$hosts.new" "$hosts"
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  fi
fi
echo "$(date +%T) alidhcp: $cmd, hosts $(tr '\n' ' ' <"$hosts")" >>"$L/dnsmasq.log"
ip netns exec alirouter chroot /opt/labroot dnsmasq --conf-file=/dev/null --port=0 --interface=vsw0 \
  --bind-interfaces --dhcp-authoritative --dhcp-range="${VSW_CIDR%/*},static,$VSW_NETMASK,12h" \
  --dhcp-hostsfile=/run/lab-dhcp-hosts --dhcp-option=option:router,"$VSW_GW" \
  --dhcp-option=option:dns-server,"$SLIRP_DNS" --leasefile-ro --user=root --group=root \
  --pid-file=/run/lab-dnsmasq.pid --log-dhcp --log-facility=- --keep-in-foreground >>"$L/dnsmasq.log" 2>&1 </dev/null &
echo $! >"$pidfile"
