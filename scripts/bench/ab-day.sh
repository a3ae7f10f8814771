#!/bin/bash
# Interleaved A/B of the backup after a day of activity (issue 18): two
# memento binaries backing up the same change, and restic once for the
# ratio. BASE holds a data dir and its first backup: BASE/data, BASE/repo
# (memento) and optionally BASE/restic. Per round: BASE is copied to
# W/round, the copy is backed up once more by OLD (and restic) so that the
# parent snapshot knows the copy's inodes, a day is applied (engram-sim
# mutate --profile PROFILE --seed SEED+round), the repository is copied for
# NEW, then OLD and NEW back up the changed copy (order alternating per
# round), restic after them in round 1; the page cache is dropped before
# every run. Prints one line per run: round, tool, wall s, CPU s (user +
# system), user s, system s, max RSS KiB, MB read from disk, 1-minute load,
# and how many times another process dropped the page cache during the run
# (/proc/vmstat drop_pagecache: on a shared machine such a run read evicted
# pages twice; prefer the runs with 0), then the medians.
#
#   OLD=/tmp/memento-main NEW=bin/memento SIM=bin/engram-sim PROFILE=wal-heavy \
#   BASE=/tmp/wh-base W=/tmp/abday scripts/bench/ab-day.sh
#
# MEMENTO_PASSWORD and RESTIC_PASSWORD must be set. ROUNDS (default 3) and
# SEED (default 100) pick the rounds and the first mutate seed.
#
# SETTLE (default 5) is how many seconds each run waits after its sync: without
# it the second memento run of a round was slower than the first whatever the
# binary (0.92-1.07 s against 1.36-1.46 s in 20 runs of s16x's day; with 8 s
# the order no longer decided; docs/benchmarks.md, "Issue 18, session 26"),
# the first run's writes still reaching the disk after sync returned.
#
# SELF=1: NEW re-backs up its own copy of the repository and cache too (the
# copy's new inodes make both replay every WAL from the start), so that each
# binary's day resumes from the replay checkpoints it wrote itself, as it
# would day after day; without it NEW resumes from OLD's (the first day
# after an upgrade).
set -u
: "${OLD:?} ${NEW:?} ${SIM:?} ${PROFILE:?} ${BASE:?} ${W:?}"
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-100}
mkdir -p "$W"
out=$W/ab-day.tsv
: >"$out"
drops() { awk '$1 == "drop_pagecache" { print $2 }' /proc/vmstat; }
run() { # ROUND TOOL CMD...
  local round=$1 tool=$2 load d0 wall u s rss in
  shift 2
  sync
  sleep "${SETTLE:-5}"
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  d0=$(drops)
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%e %U %S %M %I' -o "$W/time" "$@" >/dev/null 2>"$W/err" || echo "FAILED: $tool: $(tail -n 2 "$W/err")" >&2
  read -r wall u s rss in <"$W/time"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$tool" "$wall" \
    "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$u" "$s" "$rss" $((in / 2048)) "$load" $(($(drops) - d0)) | tee -a "$out"
}
for ((round = 1; round <= ROUNDS; round++)); do
  d=$W/$round
  rm -rf "$d"
  cp -a "$BASE" "$d"
  export MEMENTO_CACHE_DIR=$d/cache-old
  if [ "${SELF:-0}" = 1 ]; then
    cp -a "$d/repo" "$d/repo-new"
    cp -a "$d/cache-old" "$d/cache-new"
    MEMENTO_CACHE_DIR=$d/cache-new "$NEW" backup --repo "$d/repo-new" --data-dir "$d/data" --all --no-progress >/dev/null 2>"$W/err" || { echo "FAILED: re-backup of the copy by NEW: $(tail -n 2 "$W/err")" >&2; exit 1; }
  fi
  "$OLD" backup --repo "$d/repo" --data-dir "$d/data" --all --no-progress >/dev/null 2>"$W/err" || { echo "FAILED: re-backup of the copy: $(tail -n 2 "$W/err")" >&2; exit 1; }
  restic=0
  if [ "$round" = 1 ] && [ -d "$d/restic" ]; then
    restic -r "$d/restic" backup --compression auto -q "$d/data" >/dev/null && restic=1
  fi
  "$SIM" mutate --profile "$PROFILE" --dir "$d/data" --seed $((SEED + round)) >/dev/null || exit 1
  if [ "${SELF:-0}" != 1 ]; then
    cp -a "$d/repo" "$d/repo-new"
    cp -a "$d/cache-old" "$d/cache-new" # each binary its own local index, both as the copy left it
  fi
  old=(env MEMENTO_CACHE_DIR="$d/cache-old" "$OLD" backup --repo "$d/repo" --data-dir "$d/data" --all --no-progress)
  new=(env MEMENTO_CACHE_DIR="$d/cache-new" "$NEW" backup --repo "$d/repo-new" --data-dir "$d/data" --all --no-progress)
  if ((round % 2)); then
    run "$round" old "${old[@]}"
    run "$round" new "${new[@]}"
  else
    run "$round" new "${new[@]}"
    run "$round" old "${old[@]}"
  fi
  [ $restic = 1 ] && run "$round" restic restic -r "$d/restic" backup --compression auto -q "$d/data"
  rm -rf "$d"
done
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }'; }
for tool in old new restic; do
  rows=$(awk -F'\t' -v t="$tool" '$2 == t' "$out")
  [ -n "$rows" ] || continue
  printf '%-6s median wall %6s s, CPU %5s s, disk read %5s MB (%d runs)\n' "$tool" \
    "$(cut -f3 <<<"$rows" | median)" "$(cut -f4 <<<"$rows" | median)" "$(cut -f8 <<<"$rows" | median)" "$(wc -l <<<"$rows")"
done
