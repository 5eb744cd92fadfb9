#!/bin/bash
# aws2aliyun-stale-sa: on an IKEv1 link, drop an IKE SA the AWS end has already cleared.
#
# IKEv1's dead-peer detection never retransmits: one R_U_THERE every dpd_delay, dead after
# dpd_timeout without an answer. On a lossy cross-border path a timeout as short as AWS's
# (30 s) tears working tunnels down, so the gateway's is long (userdata/swanctl.py). The AWS
# end still clears its SAs after its own DPD timeout (STALE_SA_AFTER_S in link.env: that
# timeout plus a margin); after a longer outage the gateway's SA is then stale and nothing
# would answer it until charon's own DPD gives up. So, run before the watchdog: a tunnel whose
# liveness probes (aws2aliyun-liveness, 10 per second) have had no answer for STALE_SA_AFTER_S
# while its IKE SA is ESTABLISHED is terminated; the watchdog then initiates it afresh, and it
# comes back as soon as the path does. A lossy path never goes that long without an answer.
set -u

readonly LINK_ENV=${AWS2ALIYUN_LINK_ENV:-/etc/aws2aliyun/link.env}  # the variables: for tests
readonly STATE=${AWS2ALIYUN_LIVENESS_STATE:-/run/aws2aliyun/liveness.json}

# shellcheck source=/dev/null
. "$LINK_ENV" || exit 0
[ -n "${STALE_SA_AFTER_S:-}" ] || exit 0

# Seconds since tunnel $1 last answered a probe, from the liveness daemon's own JSON; nothing
# when it never has, or the daemon's state is not fresh (then this is no verdict).
quiet_s() {
  python3 - "$STATE" "$1" <<'PY' 2>/dev/null
import json, sys, time
state = json.load(open(sys.argv[1]))
ago = state["tunnels"][sys.argv[2]]["last_answer_s_ago"]
if ago is not None and time.time() - state["updated"] < 5:
    print(int(ago + time.time() - state["updated"]))
PY
}

for n in 1 2; do
  conn="tunnel$n"
  quiet=$(quiet_s "$conn")
  if [ -z "$quiet" ] || [ "$quiet" -lt "$STALE_SA_AFTER_S" ]; then
    continue
  fi
  swanctl --list-sas --noblock --ike "$conn" 2>/dev/null | grep -qE "^${conn}: #[0-9]+, ESTABLISHED" || continue
  logger -t aws2aliyun-stale-sa -p daemon.notice \
    "$conn: no answer through the tunnel for ${quiet}s (the AWS end clears its SAs after ${STALE_SA_AFTER_S}s): terminating the stale IKE SA"
  swanctl --terminate --ike "$conn" --force --timeout 3 >/dev/null 2>&1
done
exit 0
