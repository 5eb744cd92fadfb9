#!/bin/bash
# aws2aliyun-stale-sa (IKEv1, run before the watchdog): terminate a tunnel's ESTABLISHED IKE
# SA once its liveness probes have had no answer for STALE_SA_AFTER_S (link.env: the AWS end's
# DPD timeout plus a margin), since the AWS end has cleared its SAs by then; the watchdog then
# initiates the tunnel afresh. Why: userdata/swanctl.py, ECS_IKEV1_DPD_TIMEOUT_S.
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
