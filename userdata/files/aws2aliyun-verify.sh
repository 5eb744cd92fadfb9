#!/bin/bash
# aws2aliyun-verify [--wait SECONDS]: is the link up?
#
# Exits 0 only when both AWS tunnels are ESTABLISHED with exactly one IKE SA and one
# CHILD_SA pair each, and both VTIs are up with a route to every AWS prefix. Otherwise prints one line per
# problem, naming the tunnel, and exits 1. With --wait it retries until healthy or the
# time is up (for `pulumi up`, right after boot).
set -u

readonly LINK_ENV=/etc/aws2aliyun/link.env
wait_s=0
while [ $# -gt 0 ]; do
  case $1 in
    --wait) wait_s=${2:?--wait needs seconds}; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
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
  else
    local cidr
    for cidr in "${aws_prefixes[@]}"; do
      if ! ip -o route show "$cidr" dev "$vti" 2>/dev/null | grep -q .; then
        problems+=("$conn: no route to $cidr over $vti")
      fi
    done
  fi
}

deadline=$((SECONDS + wait_s))
while :; do
  problems=()
  check_tunnel 1
  check_tunnel 2
  if [ ${#problems[@]} -eq 0 ]; then
    echo "ok: tunnel1 and tunnel2 ESTABLISHED, one CHILD_SA pair each, $TUNNEL1_VTI and $TUNNEL2_VTI up"
    exit 0
  fi
  [ "$SECONDS" -ge "$deadline" ] && break
  sleep 5
done
printf '%s\n' "${problems[@]}"
exit 1
