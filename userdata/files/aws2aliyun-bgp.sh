#!/bin/bash
# aws2aliyun-bgp TUNNEL STATE OTHER_ALIVE PEER: a liveness verdict applied to BGP (why: userdata/frr.py).
# A tunnel dead while the other answers: its session reset, every Alibaba prefix's halves
# announced (AWS prefers the longest prefix). Both answering: the halves withdrawn.
set -u
[ "$3" = True ] || exit 0
case $2 in
  dead) vtysh -c "clear ip bgp $4" >/dev/null; no="" ;;
  alive) # withdrawn once this tunnel's session is up again: AWS's routes over it are fresh
    no="no "
    for _ in {1..60}; do
      vtysh -c "show bgp neighbors $4 json" | grep -q '"bgpState":"Established"' && break
      sleep 1
    done
    sleep 2 ;;
  *) exit 0 ;;
esac
# shellcheck source=/dev/null
. "${AWS2ALIYUN_LINK_ENV:-/etc/aws2aliyun/link.env}"
r=${AWS2ALIYUN_RUN_DIR:-/run/aws2aliyun}
exec 9>"$r/bgp.lock"
flock 9
# and only while both tunnels still answer (the liveness daemon's state)
[ -n "$no" ] && [ "$(grep -o '"state": "alive"' "$r/liveness.json" | wc -l)" != 2 ] && exit 0
# shellcheck disable=SC2086 # one argument per prefix
mapfile -t hs < <(python3 -c 'import ipaddress as i, sys
for p in sys.argv[1:]:
    print(*i.ip_network(p).subnets(1), sep="\n") if p[-3:] != "/32" else 0' $ALI_CIDRS)
a=(-c "configure terminal" -c "$(vtysh -c "show running-config" | grep -m1 "^router bgp ")")
a+=(-c "address-family ipv4 unicast")
for h in "${hs[@]}"; do a+=(-c "${no}network $h"); done
vtysh "${a[@]}" >/dev/null
logger -t aws2aliyun-bgp -- "$1 $2: ${no}network ${hs[*]}"
