#!/bin/bash
# aws2aliyun-updown TUNNEL: strongSwan updown for one route-based AWS tunnel.
#
# On up-client: create or update the tunnel's VTI (key = the child's mark) with its inside
# address and an MTU that fits AWS's NAT-T overhead, set the VTI sysctls and clamp TCP MSS.
# On down-client: take the VTI down, which withdraws its routes, so traffic fails over to the
# other tunnel; unless another CHILD_SA of the tunnel still uses it (a duplicate closing).
# The routes to the AWS prefixes belong to aws2aliyun-liveness, which routes over a VTI once
# it is up and probes through it are answered. Everything it needs is in
# /etc/aws2aliyun/link.env; it is idempotent.
#
# charon runs this script holding its event bus: no IKE message, on either tunnel, is processed
# until it exits (strongSwan's bus_t.child_updown locks the bus around every listener). So it
# starts few processes (two `ip -batch`, one route lookup, the MSS rules' checks, the log line)
# and writes sysctls through /proc: on a small, busy instance each process costs.
set -u

readonly LINK_ENV=${AWS2ALIYUN_LINK_ENV:-/etc/aws2aliyun/link.env}  # the variable: for tests
tunnel=${1:-}

log() { logger -t aws2aliyun-updown -- "${tunnel}: $*" 2>/dev/null || echo "aws2aliyun-updown ${tunnel}: $*" >&2; }

# shellcheck source=/dev/null
. "$LINK_ENV" || { log "cannot read $LINK_ENV"; exit 1; }

case $tunnel in
  tunnel1) vti=$TUNNEL1_VTI mark=$TUNNEL1_MARK local_inside=$TUNNEL1_LOCAL_INSIDE ;;
  tunnel2) vti=$TUNNEL2_VTI mark=$TUNNEL2_MARK local_inside=$TUNNEL2_LOCAL_INSIDE ;;
  *) log "usage: aws2aliyun-updown tunnel1|tunnel2 (got '${tunnel}')"; exit 1 ;;
esac

# Add a mangle rule unless it is already there.
ensure_rule() {
  iptables -w -t mangle -C "$@" 2>/dev/null || iptables -w -t mangle -A "$@"
}

# A sysctl through /proc (no process): net.ipv4.conf.IFACE.KEY = VALUE
conf() { echo "$3" >"${PROC_CONF:-/proc/sys/net/ipv4/conf}/$1/$2" 2>/dev/null || log "cannot set net.ipv4.conf.$1.$2"; }

up() {
  local me=${PLUTO_ME:?} peer=${PLUTO_PEER:?} route link
  link="link add $vti type vti local $me remote $peer key $mark"
  if [ -e "${SYS_NET:-/sys/class/net}/$vti" ]; then
    link="link set dev $vti down"$'\n'"link change $vti type vti local $me remote $peer key $mark"
  fi
  ip -batch - <<<"$link" || log "up: cannot create $vti"
  # The VTI does the policy work; rp_filter loose because replies may come back on the
  # other tunnel while AWS switches.
  conf "$vti" disable_policy 1
  conf "$vti" rp_filter 2
  # the NIC that carries IKE/ESP towards the peer (eth0 on an ECS): no policy lookups on it
  route=$(ip -o route get "$peer" 2>/dev/null)
  if [[ $route =~ \ dev\ ([^ ]+) ]]; then
    conf "${BASH_REMATCH[1]}" disable_xfrm 1
    conf "${BASH_REMATCH[1]}" disable_policy 1
  fi
  ip -batch - <<EOF || log "up: cannot address $vti"
addr flush dev $vti
addr add $local_inside dev $vti
link set dev $vti mtu $VTI_MTU up
EOF
  # AWS does not do path-MTU discovery through the tunnel: clamp MSS both ways (only down).
  local dir
  for dir in -o -i; do
    ensure_rule FORWARD "$dir" "$vti" -p tcp --tcp-flags SYN,RST SYN \
      -m tcpmss --mss "$((TCP_MSS + 1)):65535" -j TCPMSS --set-mss "$TCP_MSS"
  done
  local routes="aws2aliyun-liveness routes $AWS_CIDRS once it answers"
  [ "${ROUTING:-static}" = bgp ] && routes="BGP routes $AWS_CIDRS once its session is up"
  log "up: $vti $me -> $peer key $mark mtu $VTI_MTU ($routes)"
}

# The ESP SAs to this tunnel's peer the kernel holds (the closing CHILD_SA's among them: charon
# calls down-client before it removes them).
outbound_sas() {
  local out lines
  out=$(ip -o xfrm state list src "${PLUTO_ME:?}" dst "${PLUTO_PEER:?}" proto esp 2>/dev/null)
  [ -n "$out" ] || { echo 0; return; }
  mapfile -t lines <<<"$out"
  echo "${#lines[@]}"
}

down() {
  # A duplicate or a rekey collision's loser closing leaves another CHILD_SA on this VTI: keep it.
  local sas
  sas=$(outbound_sas)
  if [ "${sas:-0}" -gt 1 ]; then
    log "down: one of $sas CHILD_SAs closed, $vti stays up for the others"
    return
  fi
  ip link set dev "$vti" down 2>/dev/null
  log "down: $vti (its routes to $AWS_CIDRS go with it)"
}

case ${PLUTO_VERB:-} in
  up-client) up ;;
  down-client) down ;;
  *) ;;
esac
exit 0
