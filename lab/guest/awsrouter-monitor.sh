#!/bin/sh
# The AWS VPC router: send traffic for the Alibaba side down one healthy tunnel (tunnel 1
# preferred, tunnel 2 when 1 has no SA pair), accept from both (plain forwarding).
. /run/lab/lab.env
healthy() {
  eval "addr=\$AWS${1}_ADDR"
  st=$(ip -n "aws$1" xfrm state 2>/dev/null)
  echo "$st" | grep -q "^src $EIP dst $addr" && echo "$st" | grep -q "^src $addr dst $EIP"
}
current=1
while :; do
  if healthy 1; then want=1; elif healthy 2; then want=2; else want=1; fi
  if [ "$want" != "$current" ]; then
    eval "via=\$AWS${want}_TRANSIT"
    for r in $AWS_ROUTES_TO_ALI; do ip -n awsrouter route replace "$r" via "$via"; done
    echo "$(date +%T) awsrouter: traffic to $AWS_ROUTES_TO_ALI now via tunnel $want"
    current=$want
  fi
  sleep 1
done
