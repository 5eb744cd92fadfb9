#!/bin/bash
# aws2aliyun-bgp TUNNEL STATE OTHER_ALIVE PEER: a liveness verdict applied to BGP (why: userdata/frr.py).
# A tunnel dead while the other answers: its session shut down, every Alibaba prefix's halves
# announced (AWS prefers the longest prefix). Alive again: its session back once it has answered
# for BGP_FAILBACK_HOLD_S (the AWS end's DPD timeout and a margin: a DPD the AWS end began in
# the outage has then ended, so it cannot clear the tunnel under fresh routes), then the halves
# withdrawn. The other tunnel dead: the session back at once (it is the only way), and a
# tunnel dying while the other waits out its hold brings the other's session back at once too.
set -u
t=$1 state=$2 other=$3 peer=$4
# shellcheck source=/dev/null
. "${AWS2ALIYUN_LINK_ENV:-/etc/aws2aliyun/link.env}"
r=${AWS2ALIYUN_RUN_DIR:-/run/aws2aliyun}
bgp() { # configuration commands under this gateway's `router bgp`
  vtysh -c "configure terminal" -c "$(vtysh -c "show running-config" | grep -m1 "^router bgp ")" "$@" >/dev/null
}
held() { # is this peer's session shut down (waiting out a hold)?
  vtysh -c "show running-config" | grep -qxF " neighbor $1 shutdown"
}
liveness() { # TUNNEL's state and whole seconds in it, from the liveness daemon's state file
  python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["tunnels"].get(sys.argv[2], {})
print(t.get("state", "unknown"), int(t.get("for_s", 0)))' "$r/liveness.json" "$1" 2>/dev/null || echo "unknown 0"
}
case $state in
  dead)
    [ "$other" = True ] || exit 0
    bgp -c "neighbor $peer shutdown"
    # the other tunnel answers: if its session is held down, it is the only way now
    o=TUNNEL$((${t#tunnel} == 1 ? 2 : 1))_REMOTE_INSIDE
    if held "${!o}"; then
      bgp -c "no neighbor ${!o} shutdown"
      logger -t aws2aliyun-bgp -- "$t dead: the other tunnel's session back at once (it was held)"
    fi
    no="" ;;
  alive)
    if [ "$other" = True ]; then
      # the daemon calls this at its verdict and writes its state file once a second, so the
      # file may not say alive yet: wait the hold from now, then ask it (2 s of lag allowed)
      sleep "$BGP_FAILBACK_HOLD_S"
      read -r now for_s < <(liveness "$t")
      # dead since, or dead and back (a later verdict's hook holds it down anew)
      [ "$now" = alive ] && [ "$for_s" -ge $((BGP_FAILBACK_HOLD_S - 2)) ] || exit 0
    fi
    ! held "$peer" || bgp -c "no neighbor $peer shutdown"  # (back already if the other died)
    [ "$other" = True ] || { logger -t aws2aliyun-bgp -- "$t alive: session back (the other tunnel is dead)"; exit 0; }
    # withdrawn once this tunnel's session is up again: AWS's routes over it are fresh
    no="no "
    for _ in {1..60}; do
      vtysh -c "show bgp neighbors $peer json" | grep -q '"bgpState":"Established"' && break
      sleep 1
    done
    sleep 2 ;;
  *) exit 0 ;;
esac
exec 9>"$r/bgp.lock"
flock 9
# and only while both tunnels still answer (the liveness daemon's state)
[ -n "$no" ] && [ "$(liveness tunnel1 | cut -d' ' -f1) $(liveness tunnel2 | cut -d' ' -f1)" != "alive alive" ] && exit 0
# shellcheck disable=SC2086 # one argument per prefix
mapfile -t hs < <(python3 -c 'import ipaddress as i, sys
for p in sys.argv[1:]:
    print(*i.ip_network(p).subnets(1), sep="\n") if p[-3:] != "/32" else 0' $ALI_CIDRS)
a=(-c "address-family ipv4 unicast")
for h in "${hs[@]}"; do a+=(-c "${no}network $h"); done
bgp "${a[@]}"
logger -t aws2aliyun-bgp -- "$t $state: ${no}network ${hs[*]}"
