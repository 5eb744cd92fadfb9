#!/bin/bash
# aws2aliyun-watchdog: initiate a tunnel strongSwan has given up on (run by a systemd timer).
#
# For tunnel1 and tunnel2: when charon holds no IKE SA for it at all (not even CONNECTING),
# or an ESTABLISHED IKE SA without any CHILD_SA, initiate the tunnel's CHILD_SA. Anything
# else (established, connecting, rekeying) is left alone, so no duplicate SA is created.
set -u

timeout_s=${INITIATE_TIMEOUT:-10}

for n in 1 2; do
  conn="tunnel$n"
  if ! sas=$(swanctl --list-sas --noblock --ike "$conn" 2>&1); then
    logger -t aws2aliyun-watchdog -p daemon.warning "$conn: cannot query charon: ${sas//$'\n'/ }"
    continue
  fi
  ike=$(grep -cE "^${conn}: #[0-9]+, " <<<"$sas")
  established=$(grep -cE "^${conn}: #[0-9]+, ESTABLISHED" <<<"$sas")
  child=$(grep -cE "^  ${conn}: #[0-9]+, reqid [0-9]+, " <<<"$sas")
  if [ "$ike" -eq 0 ]; then
    why="no IKE SA"
  elif [ "$established" -gt 0 ] && [ "$child" -eq 0 ]; then
    why="IKE SA without CHILD_SA"
  else
    continue
  fi
  logger -t aws2aliyun-watchdog -p daemon.notice "$conn: $why, initiating"
  out=$(swanctl --initiate --child "$conn" --timeout "$timeout_s" 2>&1 | grep -v "^plugin '")
  logger -t aws2aliyun-watchdog "$conn: $(tail -n 1 <<<"$out")"
done
exit 0
