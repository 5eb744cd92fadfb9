#!/bin/bash
# aws2aliyun-updown TUNNEL: strongSwan updown for one route-based AWS tunnel.
# aws2aliyun-updown TUNNEL prepare: what up-client would do first, ahead (a pair's standby).
#
# On up-client: create or update the tunnel's VTI (key = the child's mark) with its inside
# address and an MTU that fits AWS's NAT-T overhead, set the VTI sysctls and clamp TCP MSS.
# On down-client: take the VTI down, which withdraws its routes, so traffic fails over to the
# other tunnel; unless another CHILD_SA of the tunnel still uses it (a duplicate closing).
# The routes to the AWS prefixes belong to aws2aliyun-liveness, which routes over a VTI once
# it is up and probes through it are answered. Everything it needs is in
# /etc/aws2aliyun/link.env; it is idempotent.
#
# prepare (aws2aliyun-ha, on a pair's standby gateway, once a boot): the VTI created down with
# the active gateway's addresses (the HaVip to the tunnel's peer), its sysctls and the MSS rules,
# so the up-client of a take-over only addresses it and brings it up: the first VTI and the
# first iptables call load kernel modules, which took 12 s of a lab take-over.
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

# The VTI (down, when it is new) and its sysctls; the NIC that carries IKE/ESP: no policy lookups.
vti_link() {
  local me=$1 peer=$2 route link
  link="link add $vti type vti local $me remote $peer key $mark"
  if [ -e "${SYS_NET:-/sys/class/net}/$vti" ]; then
    link="link set dev $vti down"$'\n'"link change $vti type vti local $me remote $peer key $mark"
  fi
  ip -batch - <<<"$link" || log "cannot create $vti"
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
}

# AWS does not do path-MTU discovery through the tunnel: clamp MSS both ways (only down).
mss_rules() {
  local dir
  for dir in -o -i; do
    ensure_rule FORWARD "$dir" "$vti" -p tcp --tcp-flags SYN,RST SYN \
      -m tcpmss --mss "$((TCP_MSS + 1)):65535" -j TCPMSS --set-mss "$TCP_MSS"
  done
}

up() {
  local me=${PLUTO_ME:?} peer=${PLUTO_PEER:?}
  vti_link "$me" "$peer"
  ip -batch - <<EOF || log "up: cannot address $vti"
addr flush dev $vti
addr add $local_inside dev $vti
link set dev $vti mtu $VTI_MTU up
EOF
  mss_rules
  local routes="aws2aliyun-liveness routes $AWS_CIDRS once it answers"
  [ "${ROUTING:-static}" = bgp ] && routes="BGP routes $AWS_CIDRS once its session is up"
  log "up: $vti $me -> $peer key $mark mtu $VTI_MTU ($routes)"
}

# A pair's standby, ahead of a take-over: what up() does before the address, once. A VTI that
# exists is left alone (a former active gateway's, down since its SAs went).
prepare() {
  local me=${HA_VIP:-} peer
  [ -n "$me" ] || { log "prepare: not a gateway of a pair (no HA_VIP in $LINK_ENV)"; exit 1; }
  case $tunnel in tunnel1) peer=$TUNNEL1_PEER ;; *) peer=$TUNNEL2_PEER ;; esac
  [ -e "${SYS_NET:-/sys/class/net}/$vti" ] || vti_link "$me" "$peer"
  mss_rules
  log "prepared: $vti $me -> $peer key $mark (down) and its MSS rules, for a take-over"
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

case ${2:-${PLUTO_VERB:-}} in
  prepare) prepare ;;
  up-client) up ;;
  down-client) down ;;
  *) ;;
esac
exit 0
