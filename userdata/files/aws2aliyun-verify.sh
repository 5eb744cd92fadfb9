#!/bin/bash
# aws2aliyun-verify [--wait SECONDS]: is the link up?
#
# Exits 0 only when both AWS tunnels are ESTABLISHED with exactly one IKE SA and one
# CHILD_SA pair each, both VTIs are up with a route to every AWS prefix (with BGP: each
# tunnel's session Established, and a route to every AWS prefix), and probes through both
# are answered (aws2aliyun-liveness). Otherwise prints one line per problem, naming the
# tunnel ("IPsec up, no answer" when only the data plane is dead, "IPsec up, BGP down" when
# only its session is), and exits 1. Prints each tunnel's liveness either way. With --wait it
# retries until healthy or the time is up (for `pulumi up`, right after boot).
set -u

readonly LINK_ENV=${AWS2ALIYUN_LINK_ENV:-/etc/aws2aliyun/link.env}  # the variables: for tests
readonly LIVENESS=${AWS2ALIYUN_LIVENESS:-/usr/local/sbin/aws2aliyun-liveness}
wait_s=0
while [ $# -gt 0 ]; do
  case $1 in
    --wait) wait_s=${2:?--wait needs seconds}; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "aws2aliyun-verify: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# shellcheck source=/dev/null
. "$LINK_ENV" || { echo "cannot read $LINK_ENV: cloud-init has not configured this host" >&2; exit 1; }
read -r -a aws_prefixes <<<"$AWS_CIDRS"

problems=()

check_tunnel() {
  local conn="tunnel$1" vti_var="TUNNEL$1_VTI" vti sas ike child
  vti=${!vti_var}
  if ! sas=$(swanctl --list-sas --ike "$conn" 2>&1); then
    problems+=("$conn: cannot query charon: ${sas//$'\n'/ }")
    return
  fi
  ike=$(grep -cE "^${conn}: #[0-9]+, ESTABLISHED" <<<"$sas")
  established[$1]=$ike
  child=$(grep -cE "^  ${conn}: #[0-9]+, reqid [0-9]+, INSTALLED" <<<"$sas")
  if [ "$ike" -eq 0 ]; then
    problems+=("$conn: IKE SA not ESTABLISHED (state: $(grep -oE "^${conn}: #[0-9]+, [A-Z_]+" <<<"$sas" | tr '\n' ' ' || true))")
  elif [ "$ike" -gt 1 ]; then
    problems+=("$conn: $ike IKE SAs where there should be one")
  fi
  if [ "$child" -ne 1 ]; then
    problems+=("$conn: $child CHILD_SA pairs INSTALLED where there should be one")
  fi
  if ! ip -o link show dev "$vti" 2>/dev/null | grep -q '[<,]UP[,>]'; then
    problems+=("$conn: VTI $vti is not up")
  elif [ "${ROUTING:-static}" = bgp ]; then
    check_bgp "$1"
  else
    local cidr
    for cidr in "${aws_prefixes[@]}"; do
      if ! ip -o route show "$cidr" dev "$vti" 2>/dev/null | grep -q .; then
        problems+=("$conn: no route to $cidr over $vti")
      fi
    done
  fi
}

# BGP (routing: bgp): the tunnel's session to AWS's inside address, from FRR's own JSON.
bgp_summary=
check_bgp() {
  local peer_var="TUNNEL$1_REMOTE_INSIDE" state
  [ -n "$bgp_summary" ] || bgp_summary=$(vtysh -c 'show bgp ipv4 unicast summary json' 2>&1)
  state=$(python3 -c 'import json, sys
try:
    peer = json.loads(sys.stdin.read()).get("peers", {}).get(sys.argv[1], {})
except ValueError:
    peer = {"state": "unknown (FRR does not answer)"}
print(peer.get("state", "not configured"), peer.get("pfxRcd", 0))' "${!peer_var}" <<<"$bgp_summary")
  case $state in
    Established\ *) ;;
    *) problems+=("tunnel$1: IPsec up, BGP down (session to ${!peer_var}: ${state% *})") ;;
  esac
}

# Every AWS prefix has a route (with BGP: over whichever tunnel BGP chose).
check_bgp_routes() {
  local cidr
  for cidr in "${aws_prefixes[@]}"; do
    ip -o route show "$cidr" 2>/dev/null | grep -q . || problems+=("no route to $cidr (BGP has not learned it)")
  done
}

# The data plane: one "tunnelN: liveness STATE ..." line per tunnel from the liveness daemon.
check_liveness() {
  local line n
  liveness=$("$LIVENESS" --status 2>&1) && return
  while IFS= read -r line; do
    case $line in
      tunnel[12]:\ liveness\ alive*) ;;
      tunnel[12]:*)
        n=${line:6:1}
        # an AWS end not known to answer (a Transit Gateway) that never has: routes follow the SAs
        [[ $line == *"liveness unknown"* && ${LIVENESS_REQUIRED:-yes} == no ]] && continue
        if [ "${established[$n]:-0}" -gt 0 ]; then
          problems+=("tunnel$n: IPsec up, no answer through the tunnel (${line#tunnel?: })")
        else
          problems+=("$line")
        fi
        ;;
      *) problems+=("$line") ;;
    esac
  done <<<"$liveness"
}

deadline=$((SECONDS + wait_s))
while :; do
  problems=()
  established=()
  liveness=
  bgp_summary=
  check_tunnel 1
  check_tunnel 2
  [ "${ROUTING:-static}" = bgp ] && check_bgp_routes
  check_liveness
  if [ ${#problems[@]} -eq 0 ]; then
    echo "ok: tunnel1 and tunnel2 ESTABLISHED, one CHILD_SA pair each, $TUNNEL1_VTI and $TUNNEL2_VTI up and answering"
    printf '%s\n' "$liveness"
    exit 0
  fi
  [ "$SECONDS" -ge "$deadline" ] && break
  sleep 5
done
printf '%s\n' "${problems[@]}"
exit 1
