#!/bin/bash
# Interleaved A/B of the backup after a day as `make bench` times it (issue
# 18, session 9): first backup, `wal archive`, unchanged backup, the day
# (engram-sim mutate --seed 2), `wal archive`, then the timed backup. The
# untimed steps are run once by NEW (so that its replay checkpoint exists in
# the cache, as after `make bench`'s first backup) on copies of the shared
# data set D (a data dir), R (its memento repository after a first backup),
# C (that repository's cache) and RR/RC (restic's); then each round times
# OLD, NEW and restic on fresh copies of that state (repository hard-linked:
# backups only add files; cache copied), the page cache dropped before each.
# Prints: tool, wall s, user s, system s, max RSS KiB, 1-minute load.
#
#   OLD=/work/wt/profiles/memento-main9 NEW=bin/memento SIM=bin/engram-sim PROFILE=default \
#   D=/work/wt/data/def R=/work/wt/data/r-def C=/work/wt/data/cache-def \
#   RR=/work/wt/data/rr-def RC=/work/wt/data/rcache-def W=/tmp/abck scripts/bench/ab-day-ckpt.sh
set -eu
: "${OLD:?} ${NEW:?} ${SIM:?} ${PROFILE:?} ${D:?} ${R:?} ${C:?} ${W:?}"
ROUNDS=${ROUNDS:-3}
export MEMENTO_PASSWORD=${MEMENTO_PASSWORD:-pw} RESTIC_PASSWORD=${RESTIC_PASSWORD:-pw}
B=$W/base
rm -rf "$W" && mkdir -p "$B"
cp -a "$D" "$B/d"; cp -a "$R" "$B/r"; cp -a "$C" "$B/c"
[ -n "${RR:-}" ] && cp -a "$RR" "$B/rr" && cp -a "$RC" "$B/rc"
export MEMENTO_CACHE_DIR=$B/c
# The shared repository's first backup left no checkpoint: --force replays it as a first backup would.
"$NEW" backup --repo "$B/r" --data-dir "$B/d" --all --no-progress --force >/dev/null
"$NEW" wal archive --repo "$B/r" --data-dir "$B/d" --all --no-progress >/dev/null 2>&1
"$NEW" backup --repo "$B/r" --data-dir "$B/d" --all --no-progress >/dev/null
[ -d "$B/rr" ] && RESTIC_CACHE_DIR=$B/rc restic -r "$B/rr" backup --compression auto -q "$B/d" >/dev/null
"$SIM" mutate --profile "$PROFILE" --dir "$B/d" --seed 2 >/dev/null
"$NEW" wal archive --repo "$B/r" --data-dir "$B/d" --all --no-progress >/dev/null 2>&1
run() { # TOOL
  local w=$W/run
  rm -rf "$w" && mkdir -p "$w"
  cp -al "$B/r" "$w/r"; cp -a "$B/c" "$w/c"
  [ "$1" = restic ] && { cp -al "$B/rr" "$w/rr"; cp -a "$B/rc" "$w/rc"; }
  sync; echo 3 >/proc/sys/vm/drop_caches
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  case $1 in
    restic) RESTIC_CACHE_DIR=$w/rc /usr/bin/time -f '%e %U %S %M' -o "$w/time" restic -r "$w/rr" backup --compression auto -q "$B/d" >/dev/null ;;
    *) MEMENTO_CACHE_DIR=$w/c /usr/bin/time -f '%e %U %S %M' -o "$w/time" "$1" backup --repo "$w/r" --data-dir "$B/d" --all --no-progress >/dev/null ;;
  esac
  echo "$1 $(cat "$w/time") load $load"
}
for ((i = 1; i <= ROUNDS; i++)); do
  run "$OLD"; run "$NEW"
  [ -d "$B/rr" ] && run restic
done
