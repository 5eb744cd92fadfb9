#!/bin/bash
# aws2aliyun-bgp TUNNEL STATE OTHER_ALIVE: a liveness verdict applied to BGP (why: userdata/frr.py).
# A tunnel dead while the other answers: its session reset, every Alibaba prefix's halves
# announced (AWS prefers the longest prefix). Both answering: the halves withdrawn.
set -u
[ "$3" = True ] || exit 0
# shellcheck source=/dev/null
. "${AWS2ALIYUN_LINK_ENV:-/etc/aws2aliyun/link.env}"
c=${AWS2ALIYUN_FRR_CONF:-/etc/frr/frr.conf}
v=TUNNEL${1#tunnel}_REMOTE_INSIDE
exec 9>"${AWS2ALIYUN_RUN_DIR:-/run/aws2aliyun}/bgp.lock"
flock 9
case $2 in
  dead) vtysh -c "clear ip bgp ${!v}" >/dev/null; no="" ;;
  alive) no="no " ;;
  *) exit 0 ;;
esac
mapfile -t hs < <(python3 -c 'import ipaddress as i, re, sys
for p in re.findall(r"^\s*network (\S+)", sys.stdin.read(), re.M):
    print(*i.ip_network(p).subnets(1), sep="\n") if p[-3:] != "/32" else 0' <"$c")
a=(-c "configure terminal" -c "$(grep -m1 '^router bgp ' "$c")" -c "address-family ipv4 unicast")
for h in "${hs[@]}"; do a+=(-c "${no}network $h"); done
vtysh "${a[@]}" >/dev/null
logger -t aws2aliyun-bgp -- "$1 $2: ${no}network ${hs[*]}"
