#!/bin/sh
# alieip.sh detach|attach
# The ECS's EIP association (the 1:1 NAT) and its route entries (each AWS prefix -> the ECS,
# or a pair's HaVip: INGRESS_IP)
# in the Alibaba router. `pulumi up` deletes them before it deletes a replaced ECS and creates
# them again once the new instance exists (lab/checks/rotation.py). Detached, the route entries'
# prefixes are blackholes: the VPC has no route for them (nothing leaks to QEMU's user network).
set -eu
. /run/lab/lab.env
NFT="ip netns exec alirouter chroot /opt/labroot nft"
handles() { $NFT -a list chain ip lab_nat "$1" | sed -n "s/.*$2.*# handle \([0-9]*\)$/\1/p"; }
case $1 in
detach)
  for h in $(handles prerouting "dnat to $INGRESS_IP"); do $NFT delete rule ip lab_nat prerouting handle "$h"; done
  for h in $(handles postrouting "snat to $EIP"); do $NFT delete rule ip lab_nat postrouting handle "$h"; done
  for r in $AWS_PREFIXES; do ip -n alirouter route replace blackhole "$r"; done
  ;;
attach)
  [ -n "$(handles prerouting "dnat to $INGRESS_IP")" ] ||
    $NFT add rule ip lab_nat prerouting iifname '"inet0"' ip daddr "$EIP" counter dnat to "$INGRESS_IP"
  [ -n "$(handles postrouting "snat to $EIP")" ] ||
    $NFT insert rule ip lab_nat postrouting oifname '"inet0"' ip saddr "$INGRESS_IP" counter snat to "$EIP"
  for r in $AWS_PREFIXES; do ip -n alirouter route replace "$r" via "$INGRESS_IP" dev vsw0; done
  ;;
*)
  echo "usage: $0 detach|attach" >&2
  exit 2
  ;;
esac
echo "EIP association and route entries: $1 done"
