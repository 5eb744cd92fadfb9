#!/bin/bash
# aws2aliyun-ha: the tunnels follow keepalived's role on a gateway of a pair behind a HaVip.
#
#   aws2aliyun-ha notify TYPE NAME STATE PRIORITY   keepalived's notify script
#   aws2aliyun-ha check                             keepalived's track script
#   aws2aliyun-ha role                              this gateway's role (MASTER, BACKUP, FAULT, STOP)
#   aws2aliyun-ha is-master                         exit 0 only on the active gateway, and not
#                                                   while it takes over (the watchdog's condition)
#   aws2aliyun-ha ready                             exit 0 once this gateway can carry the link alone
#                                                   (`pulumi up` waits for it before replacing the other)
#
# MASTER: load the connections, initiate both tunnels. Any other state: load an empty
# connection set (STANDBY_CONF), terminate both tunnels. Why: userdata/keepalived.py.
set -u

readonly RUN_DIR=${AWS2ALIYUN_RUN_DIR:-/run/aws2aliyun}  # the variables: for tests
readonly STANDBY_CONF=${AWS2ALIYUN_STANDBY_CONF:-/etc/aws2aliyun/standby-swanctl.conf}
readonly ESP_ALGORITHMS=${AWS2ALIYUN_ESP_ALGORITHMS:-/etc/aws2aliyun/esp-algorithms}
readonly UPDOWN=${AWS2ALIYUN_UPDOWN:-/usr/local/sbin/aws2aliyun-updown}
readonly ROLE_FILE=$RUN_DIR/ha-role
readonly CHARON_PID_FILE=$RUN_DIR/ha-charon-pid
readonly LOCK_FILE=$RUN_DIR/ha.lock
readonly SIDE_FILE=$RUN_DIR/ha-side  # what the last transition did: master or standby
readonly KERNEL_READY_FILE=$RUN_DIR/ha-kernel-ready  # this boot's kernel has the tunnels' modules
readonly TUNNELS=(tunnel1 tunnel2)
readonly VICI_SOCKET=${AWS2ALIYUN_VICI_SOCKET:-/var/run/charon.vici}

log() { logger -t aws2aliyun-ha -- "$*" 2>/dev/null || echo "aws2aliyun-ha: $*" >&2; }

charon_pid() { pidof -s charon-systemd || pidof -s charon; }

role() { cat "$ROLE_FILE" 2>/dev/null || echo UNKNOWN; }

# IPsec SAs in the kernel (charon's, or left by a charon that died: the kernel keeps them)
kernel_sas() {
  local out
  out=$(ip xfrm state count 2>/dev/null)
  if [[ $out =~ ([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}

# Idempotent: the connections (re)loaded (a standby unloaded them; the secrets stay loaded),
# and only a tunnel without an IKE SA initiated.
# Seconds since $1 (an $EPOCHREALTIME), for the hand-over's timings in the journal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

become_master() {
  local t sas start=$EPOCHREALTIME held=()
  swanctl --load-conns >/dev/null 2>&1 || log "MASTER: swanctl --load-conns failed"
  # a gateway taking over holds no SA (a standby released them): no need to ask charon, each
  # swanctl call costs about a second on a loaded host; one already MASTER may hold some
  if [ "$(kernel_sas)" != 0 ]; then
    sas=$(swanctl --list-sas --noblock 2>/dev/null)
  else
    sas=
  fi
  for t in "${TUNNELS[@]}"; do
    if grep -qE "^$t: #[0-9]+, " <<<"$sas"; then
      held+=("$t")
      continue
    fi
    (
      # charon goes on with the exchange after the command returns
      out=$(swanctl --initiate --child "$t" --timeout 5 2>&1 | grep -v "^plugin '")
      log "MASTER: $t: $(tail -n 1 <<<"$out") ($(since "$start") after taking over)"
    ) &
  done
  # the charon this gateway took over with (after the initiations: every process here delays them)
  charon_pid >"$CHARON_PID_FILE" || rm -f "$CHARON_PID_FILE"
  log "MASTER: connections loaded in $(since "$start"); initiating the tunnels${held[*]:+ but ${held[*]} (already held)}"
  wait
}

# Once a boot, on a standby: the kernel loads an ESP algorithm's modules, instantiates it and
# self-tests it at its first SA, and the VTI module at the first VTI. A gateway that never held
# the tunnels would pay that during a take-over, with charon's CHILD_SAs waiting (10 s in the
# lab), so it pays now: the VTI module, and one SA of each of the link's ESP transforms added and
# deleted at once (keys zero, on the loopback address; it never carries a packet). Then each
# tunnel's VTI, down, and its MSS rules (the updown's `prepare`): the first VTI and the first
# iptables call load modules too, and the updown runs holding charon's event bus (12 s of a lab
# take-over, the other tunnel's CHILD_SA waiting behind it).
ready_kernel() {
  [ -e "$KERNEL_READY_FILE" ] && return 0
  local start=$EPOCHREALTIME line words spi=256 failed=0
  modprobe ip_vti 2>/dev/null || failed=1
  if [ -r "$ESP_ALGORITHMS" ]; then
    while read -r line; do
      [[ -z $line || $line == \#* ]] && continue
      read -ra words <<<"$line"
      spi=$((spi + 1))
      if ip xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" mode tunnel "${words[@]}"; then
        ip xfrm state delete src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi"
      else
        failed=1
      fi
    done <"$ESP_ALGORITHMS"
  else
    failed=1
  fi
  local t
  for t in "${TUNNELS[@]}"; do
    "$UPDOWN" "$t" prepare || failed=1
  done
  # done either way (`ready` waits for it): what failed, a take-over loads itself, slower
  touch "$KERNEL_READY_FILE"
  if [ "$failed" = 0 ]; then
    log "kernel ready for a take-over: $((spi - 256)) ESP transform(s) loaded, both VTIs and their MSS rules in place, in $(since "$start")"
  else
    log "readying the kernel for a take-over failed in part (a take-over loads the rest itself)"
  fi
}

become_standby() {
  rm -f "$CHARON_PID_FILE"
  swanctl --load-conns --file "$STANDBY_CONF" >/dev/null 2>&1 || log "$1: unloading the connections failed"
  local t
  for t in "${TUNNELS[@]}"; do
    # --force: do not wait for AWS's answer to the DELETE (the peer may already hold the link)
    swanctl --terminate --ike "$t" --force --timeout 3 >/dev/null 2>&1
  done
  # what is left charon does not know: the SAs and policies of a charon that was killed (the
  # kernel keeps them; until flushed they still carry traffic to AWS, and the track script
  # would find a standby holding SAs at each run)
  local left
  left=$(kernel_sas)
  if [ "$left" != 0 ]; then
    ip xfrm state flush && ip xfrm policy flush
    log "$1: flushed $left IPsec SAs charon did not hold (left by a charon that died)"
  fi
  log "$1: connections unloaded, both tunnels torn down (the active gateway holds them)"
  ready_kernel
}

# Act on the latest role, one transition at a time. A standby that turns standby again (FAULT
# then BACKUP, as after charon's restart) has nothing more to release: the track script still
# releases any SA a standby holds.
reconcile() {
  (
    flock 9
    local now
    now=$(role)
    if [ "$now" = MASTER ]; then
      become_master
      echo master >"$SIDE_FILE"
    elif [ "$(cat "$SIDE_FILE" 2>/dev/null)" = standby ]; then
      log "$now: already standby"
    else
      become_standby "$now"
      echo standby >"$SIDE_FILE"
    fi
  ) 9>"$LOCK_FILE"
}

notify() {
  local state=${3:-}
  [ -d "$RUN_DIR" ] || mkdir -p "$RUN_DIR"
  case $state in
    MASTER|BACKUP|FAULT|STOP) echo "$state" >"$ROLE_FILE" ;;
    *) log "notify: unknown state '$state' ($*)"; return 1 ;;
  esac
  log "keepalived: $state (priority ${4:-?}): $([ "$state" = MASTER ] && echo "taking the tunnels" || echo "releasing the tunnels")"
  reconcile
}

check() {
  # light (no strongSwan CLI): keepalived runs it every 2 s (userdata/keepalived.py)
  local pid recorded now
  pid=$(charon_pid) || { echo "charon is not running"; return 1; }
  [ -S "$VICI_SOCKET" ] || { echo "charon's control socket is missing"; return 1; }
  now=$(role)
  if [ "$now" = MASTER ] && recorded=$(cat "$CHARON_PID_FILE" 2>/dev/null) \
    && [ -n "$recorded" ] && [ "$recorded" != "$pid" ]; then
    log "check: charon restarted under the active gateway (pid $recorded -> $pid): handing over"
    echo "charon restarted"
    return 1
  fi
  # a standby holds no SA: release one left by a transition that raced (never blocks on the lock;
  # not before its kernel is ready: while a standby readies it, every IPsec netlink call waits
  # for the kernel's module loads, and this one timed the script out in the lab)
  if [ "$now" != MASTER ] && [ -e "$KERNEL_READY_FILE" ] && [ "$(kernel_sas)" != 0 ]; then
    ( flock -n 9 && [ "$(role)" != MASTER ] && log "check: $now gateway still holds SAs: releasing them" \
      && become_standby "$now" ) 9>"$LOCK_FILE"
  fi
  return 0
}

# Ready to carry the link alone: cloud-init done, charon up and answering, and keepalived
# either standby (BACKUP: the peer is active; its connections are loaded when it takes over)
# or active with both tunnels up.
ready() {
  local role
  cloud-init status 2>/dev/null | grep -q "status: done" || { echo "not ready: cloud-init has not finished"; return 1; }
  check >/dev/null || { echo "not ready: $(check)"; return 1; }
  systemctl is-active --quiet keepalived || { echo "not ready: keepalived is not running"; return 1; }
  role=$(role)
  case $role in
    BACKUP)
      [ -e "$KERNEL_READY_FILE" ] || { echo "not ready: standby, readying the kernel for a take-over"; return 1; }
      echo "ready: standby (keepalived BACKUP), charon up, the kernel ready for a take-over"
      ;;
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
  role) role ;;
  # not before the take-over has run (its side is master) nor while a transition holds the lock:
  # a watchdog run then would see no IKE SA yet and initiate a second one beside it (the lab saw
  # one start in the 2 s between keepalived's MASTER and the take-over taking the lock)
  is-master) [ "$(role)" = MASTER ] && [ "$(cat "$SIDE_FILE" 2>/dev/null)" = master ] && flock -n "$LOCK_FILE" true ;;
  ready) ready ;;
  *) echo "usage: aws2aliyun-ha notify TYPE NAME STATE PRIORITY | check | role | is-master | ready" >&2; exit 2 ;;
esac
