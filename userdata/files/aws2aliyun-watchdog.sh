#!/bin/bash
# aws2aliyun-watchdog: initiate a tunnel strongSwan has given up on, delete superseded
# CHILD_SAs, re-create one dead underneath (run by a systemd timer; why and when:
# userdata/watchdog.py in aws2aliyun-vpc).
set -u

timeout_s=${INITIATE_TIMEOUT:-10}
duplicate_age=${DUPLICATE_AGE:-10}
dead_child_after=${DEAD_CHILD_AFTER:-50}
liveness=${LIVENESS:-/usr/local/sbin/aws2aliyun-liveness}
stamp_dir=${WATCHDOG_RUN_DIR:-/run/aws2aliyun}

# "ID STATE AGE" of each INSTALLED, REKEYED or DELETED CHILD_SA of connection $1 in
# `swanctl --list-sas` output $2, oldest (lowest unique ID) first.
settled_children() {
  awk -v c="$1" '
    $0 ~ "^  " c ": #[0-9]+, reqid [0-9]+, (INSTALLED|REKEYED|DELETED)," {
      match($0, /#[0-9]+/); id = substr($0, RSTART + 1, RLENGTH - 1)
      match($0, /(INSTALLED|REKEYED|DELETED)/); state = substr($0, RSTART, RLENGTH); want = 1; next
    }
    want && match($0, /installed [0-9]+s ago/) {
      print id, state, substr($0, RSTART + 10, RLENGTH - 15); want = 0
    }' <<<"$2" | sort -n
}

reap_superseded() {
  local conn=$1 sas=$2 children newest age id state
  children=$(settled_children "$conn" "$sas")
  [ "$(grep -c . <<<"$children")" -gt 1 ] || return 0
  read -r newest _ age <<<"$(grep " INSTALLED " <<<"$children" | tail -n 1)"
  [ -n "$newest" ] && [ "$age" -ge "$duplicate_age" ] || return 0
  while read -r id state _; do
    [ "$id" = "$newest" ] && continue
    logger -t aws2aliyun-watchdog -p daemon.notice "$conn: superseded $state CHILD_SA #$id (keeping #$newest), deleting"
    swanctl --terminate --child-id "$id" --timeout 5 >/dev/null 2>&1
  done <<<"$children"
}

# A tunnel established but dead underneath for dead_child_after seconds: its CHILD_SA again.
recreate_dead_child() {
  local conn=$1 sas=$2 dead out stamp=$stamp_dir/watchdog-recreated-$1
  dead=$("$liveness" --dead-for "$conn" 2>/dev/null) && [ "$dead" -ge "$dead_child_after" ] || return 0
  [ -n "$(find "$stamp" -newermt "$dead_child_after seconds ago" 2>/dev/null)" ] && return 0
  mkdir -p "$stamp_dir" && touch "$stamp"
  logger -t aws2aliyun-watchdog -p daemon.notice "$conn: established, but nothing answered through it for ${dead}s: re-creating its CHILD_SA"
  grep -oE "^  $conn: #[0-9]+" <<<"$sas" | grep -oE "[0-9]+$" | while read -r id; do
    swanctl --terminate --child-id "$id" --timeout 5 >/dev/null 2>&1
  done
  out=$(swanctl --initiate --child "$conn" --timeout "$timeout_s" 2>&1 | grep -v "^plugin '")
  logger -t aws2aliyun-watchdog "$conn: $(tail -n 1 <<<"$out")"
}

for n in 1 2; do
  conn="tunnel$n"
  if ! sas=$(swanctl --list-sas --noblock --ike "$conn" 2>&1); then
    logger -t aws2aliyun-watchdog -p daemon.warning "$conn: cannot query charon: ${sas//$'\n'/ }"
    continue
  fi
  ike=$(grep -cE "^${conn}: #[0-9]+, " <<<"$sas")
  if [ "$ike" -eq 0 ]; then
    # --noblock leaves out an IKE SA that is busy (checked out: its updown running, an exchange
    # under way), which would read as "no IKE SA" and start a duplicate: ask again, waiting
    sas=$(timeout "$timeout_s" swanctl --list-sas --ike "$conn" 2>&1) || sas=
    ike=$(grep -cE "^${conn}: #[0-9]+, " <<<"$sas")
  fi
  established=$(grep -cE "^${conn}: #[0-9]+, ESTABLISHED" <<<"$sas")
  child=$(grep -cE "^  ${conn}: #[0-9]+, reqid [0-9]+, " <<<"$sas")
  if [ "$ike" -eq 0 ]; then
    why="no IKE SA"
  elif [ "$established" -gt 0 ] && [ "$child" -eq 0 ]; then
    why="IKE SA without CHILD_SA"
  else
    reap_superseded "$conn" "$sas"
    [ "$established" -gt 0 ] && recreate_dead_child "$conn" "$sas"
    continue
  fi
  logger -t aws2aliyun-watchdog -p daemon.notice "$conn: $why, initiating"
  out=$(swanctl --initiate --child "$conn" --timeout "$timeout_s" 2>&1 | grep -v "^plugin '")
  logger -t aws2aliyun-watchdog "$conn: $(tail -n 1 <<<"$out")"
done
exit 0
