#!/bin/bash
# aws2aliyun-ha: the tunnels follow keepalived's role on a gateway of a pair behind a HaVip.
#
#   aws2aliyun-ha notify TYPE NAME STATE PRIORITY   keepalived's notify script
#   aws2aliyun-ha check                             keepalived's track script
#   aws2aliyun-ha role                              this gateway's role (MASTER, BACKUP, FAULT, STOP)
#   aws2aliyun-ha is-master                         exit 0 only on the active gateway
#   aws2aliyun-ha ready                             exit 0 once this gateway can carry the link alone
#                                                   (`pulumi up` waits for it before replacing the other)
#
# MASTER (this gateway now holds the HaVip, the address IKE binds to): load the connections
# and initiate both tunnels. The IKE identity is the EIP, so AWS sees the same peer, and the
# INITIAL_CONTACT of a fresh IKE SA makes it drop the other gateway's SAs at once.
# Any other state: terminate both tunnels, so only the active gateway holds SAs (and routes:
# aws2aliyun-liveness routes over VTIs that are up, and a VTI goes down with its SA).
# check fails when charon is not running, does not answer within 2 s, or was restarted while
# this gateway was MASTER (its SAs died with it: hand over to the standby, whose charon is up).
set -u

readonly RUN_DIR=${AWS2ALIYUN_RUN_DIR:-/run/aws2aliyun}  # the variable: for tests
readonly ROLE_FILE=$RUN_DIR/ha-role
readonly CHARON_PID_FILE=$RUN_DIR/ha-charon-pid
readonly TUNNELS=(tunnel1 tunnel2)

log() { logger -t aws2aliyun-ha -- "$*" 2>/dev/null || echo "aws2aliyun-ha: $*" >&2; }

charon_pid() { pidof -s charon-systemd || pidof -s charon; }

become_master() {
  charon_pid >"$CHARON_PID_FILE" || rm -f "$CHARON_PID_FILE"
  swanctl --load-all --noprompt >/dev/null 2>&1 || log "MASTER: swanctl --load-all failed"
  local t
  for t in "${TUNNELS[@]}"; do
    (
      out=$(swanctl --initiate --child "$t" --timeout 30 2>&1 | grep -v "^plugin '")
      log "MASTER: $t: $(tail -n 1 <<<"$out")"
    ) &
  done
  wait
}

become_standby() {
  rm -f "$CHARON_PID_FILE"
  local t
  for t in "${TUNNELS[@]}"; do
    # --force: do not wait for AWS's answer to the DELETE (the peer may already hold the link)
    swanctl --terminate --ike "$t" --force --timeout 3 >/dev/null 2>&1
  done
  log "$1: both tunnels torn down (the active gateway holds them)"
}

notify() {
  local state=${3:-}
  mkdir -p "$RUN_DIR"
  case $state in
    MASTER|BACKUP|FAULT|STOP) echo "$state" >"$ROLE_FILE" ;;
    *) log "notify: unknown state '$state' ($*)"; return 1 ;;
  esac
  log "keepalived: $state (priority ${4:-?}): $([ "$state" = MASTER ] && echo "taking the tunnels" || echo "releasing the tunnels")"
  if [ "$state" = MASTER ]; then
    become_master
  else
    become_standby "$state"
  fi
}

check() {
  local pid recorded
  pid=$(charon_pid) || { echo "charon is not running"; return 1; }
  timeout 2 swanctl --stats >/dev/null 2>&1 || { echo "charon does not answer"; return 1; }
  if [ "$(cat "$ROLE_FILE" 2>/dev/null)" = MASTER ] && recorded=$(cat "$CHARON_PID_FILE" 2>/dev/null) \
    && [ -n "$recorded" ] && [ "$recorded" != "$pid" ]; then
    log "check: charon restarted under the active gateway (pid $recorded -> $pid): handing over"
    echo "charon restarted"
    return 1
  fi
  return 0
}

# Ready to carry the link alone: cloud-init done, charon up with both connections loaded, and
# keepalived either standby (BACKUP: the peer is active) or active with both tunnels up.
ready() {
  local role conns
  cloud-init status 2>/dev/null | grep -q "status: done" || { echo "not ready: cloud-init has not finished"; return 1; }
  check >/dev/null || { echo "not ready: $(check)"; return 1; }
  conns=$(swanctl --list-conns 2>/dev/null | grep -cE "^tunnel[12]: ")
  [ "$conns" -eq 2 ] || { echo "not ready: charon has $conns of the 2 connections loaded"; return 1; }
  systemctl is-active --quiet keepalived || { echo "not ready: keepalived is not running"; return 1; }
  role=$(cat "$ROLE_FILE" 2>/dev/null || echo UNKNOWN)
  case $role in
    BACKUP) echo "ready: standby (keepalived BACKUP), charon up with both connections" ;;
    MASTER)
      if "${VERIFY:-/usr/local/sbin/aws2aliyun-verify}" >/dev/null 2>&1; then
        echo "ready: active (keepalived MASTER), both tunnels up"
      else
        echo "not ready: active (keepalived MASTER), the tunnels are not up yet"
        return 1
      fi
      ;;
    *) echo "not ready: keepalived role $role"; return 1 ;;
  esac
}

case ${1:-} in
  notify) shift; notify "$@" ;;
  check) check ;;
  role) cat "$ROLE_FILE" 2>/dev/null || echo UNKNOWN ;;
  is-master) [ "$(cat "$ROLE_FILE" 2>/dev/null)" = MASTER ] ;;
  ready) ready ;;
  *) echo "usage: aws2aliyun-ha notify TYPE NAME STATE PRIORITY | check | role | is-master | ready" >&2; exit 2 ;;
esac
