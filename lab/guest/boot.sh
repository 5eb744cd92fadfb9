#!/bin/sh
# The lab's network around the ECS, built at every boot by lab-boot.service before
# cloud-init runs. The root namespace is the ECS: this script only moves the Alibaba
# router's two NICs out of it and makes sure the ECS's own NIC is called eth0; the ECS
# gets its address by DHCP from the vSwitch, like on Alibaba Cloud.
set -eu
. /run/lab/lab.env
L=/run/lab/log
LABROOT=/opt/labroot  # the lab's tools, apart from the ECS's root filesystem
mkdir -p "$L" /run/lab/peer
exec >>"$L/boot.log" 2>&1
echo "=== lab boot $(date +%T)"
set -x

nic_by_mac() {
  for d in /sys/class/net/*; do
    [ "$(cat "$d/address" 2>/dev/null)" = "$1" ] && { basename "$d"; return; }
  done
}
wait_nic() {
  i=0
  while [ -z "$(nic_by_mac "$1")" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  nic_by_mac "$1"
}
sys() { ns=$1; shift; ip netns exec "$ns" sysctl -qw "$@"; }
new_ns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  sys "$1" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}
# host_nets ROUTER_NS "NS,ROUTER_IF,ROUTER_IP,HOST_IP,PREFIXLEN ...": a host per extra prefix,
# on a link of its own to its side's router (MTU 1500, default route via the router).
host_nets() {
  rns=$1
  for h in $2; do
    old_ifs=$IFS; IFS=,; set -- $h; IFS=$old_ifs
    new_ns "$1"
    ip -n "$rns" link add "$2" type veth peer name eth0 netns "$1"
    ip -n "$rns" addr add "$3/$5" dev "$2"
    ip -n "$rns" link set "$2" up
    ip -n "$1" addr add "$4/$5" dev eth0
    ip -n "$1" link set eth0 mtu "$HOST_MTU" up
    ip -n "$1" route add default via "$3"
  done
}

modprobe -a ip_vti esp4 xfrm_user xfrm4_tunnel bridge veth nf_tables nft_chain_nat nf_nat 2>/dev/null || true

ecs=$(wait_nic "$ECS_MAC"); lan=$(wait_nic "$ALI_LAN_MAC"); wan=$(wait_nic "$ALI_WAN_MAC")
for ns in alirouter alihost internet aws1 aws2 awsrouter awshost; do new_ns "$ns"; done

# --- Alibaba VPC: router (vSwitch gateway, route entry, EIP 1:1 NAT, NAT to QEMU's net)
ip link set "$lan" netns alirouter && ip -n alirouter link set "$lan" name lan0
ip link set "$wan" netns alirouter && ip -n alirouter link set "$wan" name wan0
[ "$ecs" = eth0 ] || ip link set "$ecs" name eth0
R="ip -n alirouter"
$R link add vsw0 type bridge
$R link set vsw0 up
$R link set lan0 master vsw0 up
$R addr add "$VSW_GW/$VSW_PREFIX" dev vsw0
sys alirouter net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
  net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.vsw0.send_redirects=0
# alihost: another instance on the same vSwitch, MTU 1500
$R link add vsw-alihost type veth peer name eth0 netns alihost
$R link set vsw-alihost master vsw0 up
ip -n alihost addr add "$ALIHOST_IP/$VSW_PREFIX" dev eth0
ip -n alihost link set eth0 mtu "$HOST_MTU" up
ip -n alihost route add default via "$VSW_GW"
sys alihost net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.eth0.accept_redirects=0
# the Alibaba prefixes without the vSwitch (a secondary CIDR's vSwitch behind the VPC's router);
# the ECS replies to them via its default route, the vSwitch gateway
host_nets alirouter "$ALI_HOST_NETS"
# the VPC's way out (package registry) through QEMU user networking
$R addr add "$SLIRP_ADDR/$SLIRP_PREFIX" dev wan0
$R link set wan0 up
$R route add default via "$SLIRP_GW"
# the internet: one bridge joining the EIP side and the AWS endpoints
I="ip -n internet"
$I link add inet type bridge
$I link set inet up
$I link add p-ali type veth peer name inet0 netns alirouter
$I link set p-ali master inet up
$R addr add "$EIP/32" dev inet0
$R link set inet0 up
$R route add "$AWS1_ADDR/32" dev inet0
$R route add "$AWS2_ADDR/32" dev inet0
# the route entries: each AWS prefix -> the ECS (a pair's HaVip: whichever gateway holds it)
for r in $AWS_PREFIXES; do $R route add "$r" via "$INGRESS_IP" dev vsw0; done
sed -e "s|@EIP@|$EIP|g" -e "s|@INGRESS_IP@|$INGRESS_IP|g" -e "s|@MIRROR_ADDR@|$MIRROR_ADDR|g" \
  -e "s|@MIRROR_PORT@|$MIRROR_PORT|g" -e "s|@SLIRP_GW@|$SLIRP_GW|g" -e "s|@MIRROR_HOST_PORT@|$MIRROR_HOST_PORT|g" \
  /run/lab/alirouter.nft |
  ip netns exec alirouter chroot "$LABROOT" nft -f -
/bin/sh /run/lab/alidhcp.sh start

# --- AWS: two tunnel endpoints, a VPC router behind them, a host in each AWS prefix
A="ip -n awsrouter"
$A link add vpc0 type veth peer name eth0 netns awshost
$A addr add "$AWSRTR_IP/$AWS_PREFIXLEN" dev vpc0
$A link set vpc0 up
ip -n awshost addr add "$AWSHOST_IP/$AWS_PREFIXLEN" dev eth0
ip -n awshost link set eth0 mtu "$HOST_MTU" up
ip -n awshost route add default via "$AWSRTR_IP"
host_nets awsrouter "$AWS_HOST_NETS"
sys awsrouter net.ipv4.ip_forward=1
# a Transit Gateway with ECMP spreads flows over both tunnels (by their ports too)
[ "$ECMP" = yes ] && sys awsrouter net.ipv4.fib_multipath_hash_policy=1
for n in 1 2; do
  eval "addr=\$AWS${n}_ADDR vgw=\$AWS${n}_VGW_INSIDE prefix=\$AWS${n}_INSIDE_PREFIX mark=\$AWS${n}_MARK"
  eval "mtu=\$AWS${n}_VTI_MTU transit=\$AWS${n}_TRANSIT transit_rtr=\$AWS${n}_TRANSIT_RTR"
  P="ip -n aws$n"
  $I link add "p-aws$n" type veth peer name pub0 netns "aws$n"
  $I link set "p-aws$n" master inet up
  $P addr add "$addr/32" dev pub0
  $P link set pub0 up
  $P route add "$EIP/32" dev pub0
  $P link add vti0 type vti local "$addr" remote "$EIP" key "$mark"
  $P addr add "$vgw/$prefix" dev vti0
  $P link set vti0 mtu "$mtu" up
  sys "aws$n" net.ipv4.ip_forward=1 net.ipv4.conf.vti0.disable_policy=1 net.ipv4.conf.vti0.rp_filter=0
  # traffic selectors 0.0.0.0/0, as AWS: every Alibaba prefix the VPN routes goes into the VTI
  # (static routing; with BGP the routes are what the customer gateway announces)
  [ "$ROUTING" = bgp ] || for r in $ALI_PREFIXES; do $P route add "$r" dev vti0; done
  $P link add vgw0 type veth peer name "t$n" netns awsrouter
  $P addr add "$transit/30" dev vgw0
  $P link set vgw0 up
  $A addr add "$transit_rtr/30" dev "t$n"
  $A link set "t$n" up
  for r in $AWS_PREFIXES; do $P route add "$r" via "$transit_rtr"; done
  # AWS VPN does not do path-MTU discovery: no "fragmentation needed" comes back.
  ip netns exec "aws$n" chroot "$LABROOT" nft -f - </run/lab/awspeer.nft
done
[ "$ROUTING" = bgp ] || for r in $ALI_PREFIXES; do $A route add "$r" via "$AWS1_TRANSIT"; done

set +x
for n in 1 2; do /bin/sh /run/lab/peer.sh start "$n"; done
if [ "$ROUTING" = bgp ]; then
  # BGP speakers as AWS runs them: one per tunnel end, and the VPC router choosing by BGP
  for ns in awsrouter aws1 aws2; do
    /bin/sh /run/lab/frr.sh start "$ns" || tail -n 20 "$L/$ns-zebra.log" "$L/$ns-bgpd.log" # the bgp_* checks say so
  done
else
  setsid /bin/bash /run/lab/awsrouter-monitor.sh >>"$L/awsrouter.log" 2>&1 </dev/null &
fi
echo "=== lab boot done $(date +%T)"
