#!/bin/bash
# The AWS VPC router: send traffic for every Alibaba prefix down one healthy tunnel (tunnel 1
# preferred, tunnel 2 when 1 has no SA pair), accept from both (plain forwarding).
#
# It looks again whenever an AWS end's SAs change (`ip xfrm monitor`: SA added, deleted,
# expired), 0.2 s after the first event of a burst, and every 10 s in any case. Polling
# every second instead forked `ip` and `grep` ~4 times a second, about 0.15 of a host core in
# a TCG guest, which slowed the measured checks of a run sharing the machine.
. /run/lab/lab.env
healthy() {
  eval "addr=\$AWS${1}_ADDR"
  st=$(ip -n "aws$1" xfrm state 2>/dev/null)
  echo "$st" | grep -q "^src $EIP dst $addr" && echo "$st" | grep -q "^src $addr dst $EIP"
}
current=1
evaluate() {
  if healthy 1; then want=1; elif healthy 2; then want=2; else want=1; fi
  if [ "$want" != "$current" ]; then
    eval "via=\$AWS${want}_TRANSIT"
    for r in $ALI_PREFIXES; do ip -n awsrouter route replace "$r" via "$via"; done
    echo "$(date +%T) awsrouter: traffic to $ALI_PREFIXES now via tunnel $want"
    current=$want
  fi
}
events() {
  ip -n aws1 xfrm monitor SA expire &
  ip -n aws2 xfrm monitor SA expire &
  wait
}
evaluate
events | while :; do
  read -r -t 10 _
  rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -le 128 ]; then
    sleep 1 # the monitors ended (end of input): look every second
  elif [ "$rc" -eq 0 ]; then
    sleep 0.2 # the rest of the burst (one change prints several lines)
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do read -r -t 0.01 _ || break; done
  fi
  evaluate
done
