#!/usr/bin/env bash
# bench-rss.sh: peak RSS of every memento operation on one large Engram data
# dir (issue 18: "peak RSS < 300 MiB at 10 GiB", on every profile), with
# restic's backup and restore for reference. Runs each operation once, in
# order, and prints a markdown table (operation, peak RSS MiB, wall s, CPU s,
# load average before-after) like the one in docs/benchmarks.md ("peak RSS at
# 10 GiB").
#
#   make bench-rss                              # 10 GiB wal-heavy
#   RSS_PROFILE=default RSS_SIZE=4G make bench-rss
#
# Environment (defaults in brackets):
#   RSS_SIZE [10G]          dataset size (engram-sim units)
#   RSS_PROFILE [wal-heavy] engram-sim profile: default or wal-heavy
#   RSS_SEED [1]            engram-sim generate seed (the day's mutate uses RSS_SEED+1)
#   RSS_DIR [/tmp/memento-rss]  work dir: data dir, repositories, restore targets
#                           (needs about 3.2x RSS_SIZE free; deleted at the end unless RSS_KEEP=1)
#   RSS_LIMIT_MIB [300]     a memento operation above this peak RSS fails the run (exit 1)
#   RSS_RESTIC [1 if restic is installed]  also restic backup and restore
#   RSS_L3 [1]              also verify --level L3 (replays every space's WAL)
#
# Peak RSS is GNU time's maximum resident set size (%M) of the memento
# process; for the mount it is the mount process while a 64 MiB WAL segment
# is read through it.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RSS_SIZE=${RSS_SIZE:-10G}
RSS_PROFILE=${RSS_PROFILE:-wal-heavy}
RSS_SEED=${RSS_SEED:-1}
RSS_DIR=${RSS_DIR:-/tmp/memento-rss}
RSS_LIMIT_MIB=${RSS_LIMIT_MIB:-300}
RSS_L3=${RSS_L3:-1}
if [ -z "${RSS_RESTIC:-}" ]; then
  if command -v restic >/dev/null; then RSS_RESTIC=1; else RSS_RESTIC=0; fi
fi

M=$ROOT/bin/memento
SIM=$ROOT/bin/engram-sim
D=$RSS_DIR/data
R=$RSS_DIR/repo
OUT=$RSS_DIR/out
export MEMENTO_PASSWORD=bench-rss MEMENTO_CACHE_DIR=$RSS_DIR/cache RESTIC_PASSWORD=bench-rss RESTIC_CACHE_DIR=$RSS_DIR/cache-restic

die() { echo "bench-rss: $*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed: apt-get install time"
if [ ! -x "$M" ] || [ ! -x "$SIM" ]; then die "build first: make build"; fi
if [ -e "$RSS_DIR" ] && [ -n "$(ls -A "$RSS_DIR")" ]; then die "$RSS_DIR is not empty"; fi
mkdir -p "$OUT" || die "cannot create $RSS_DIR"
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  fusermount3 -u "$RSS_DIR/mnt" 2>/dev/null
  [ "${RSS_KEEP:-0}" = 1 ] || rm -rf "$RSS_DIR"
}
trap cleanup EXIT

ROWS=()
FAILED=0
# measure TOOL OP CMD...: runs CMD under GNU time and records a row.
measure() {
  local tool=$1 op=$2; shift 2
  local l0 l1 rc
  l0=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -o "$OUT/$tool-$op.time" -f '%e %U %S %M' "$@" >"$OUT/$tool-$op.out" 2>"$OUT/$tool-$op.err"
  rc=$?
  l1=$(cut -d' ' -f1 /proc/loadavg)
  record "$tool" "$op" "$rc" "$(tail -1 "$OUT/$tool-$op.time")" "$l0-$l1"
}
# record TOOL OP RC "WALL USER SYS KIB" LOAD
record() {
  local tool=$1 op=$2 rc=$3 load=$5 wall user sys kib mib cpu
  read -r wall user sys kib <<<"$4"
  mib=$(awk -v k="$kib" 'BEGIN{printf "%.0f", k/1024}')
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.1f", u+s}')
  if [ "$rc" != 0 ]; then
    echo "bench-rss: $tool $op failed (exit $rc), see $OUT/$tool-$op.err" >&2
    FAILED=1
  fi
  if [ "$tool" = memento ] && [ "$mib" -ge "$RSS_LIMIT_MIB" ]; then
    echo "bench-rss: memento $op peaked at $mib MiB, not below $RSS_LIMIT_MIB MiB" >&2
    FAILED=1
  fi
  ROWS+=("| $op | $tool | $mib | $wall | $cpu | $load |")
  echo "$tool $op: $mib MiB, $wall s, $cpu CPU s, load $load (exit $rc)" >&2
}

"$SIM" generate --profile "$RSS_PROFILE" --size "$RSS_SIZE" --seed "$RSS_SEED" --dir "$D" >&2 || die "engram-sim generate failed"
"$M" init --repo "$R" -q || die "memento init failed"

measure memento "backup (first)" "$M" backup --repo "$R" --data-dir "$D" --all --no-progress
measure memento "backup (unchanged)" "$M" backup --repo "$R" --data-dir "$D" --all --no-progress
measure memento "restore --all --latest" "$M" restore --repo "$R" --all --latest --target "$RSS_DIR/restore" --no-progress
rm -rf "$RSS_DIR/restore"
measure memento "verify --level L2" "$M" verify --repo "$R" --all --level L2 --no-progress
[ "$RSS_L3" = 1 ] && measure memento "verify --latest --level L3" "$M" verify --repo "$R" --all --latest --level L3 --no-progress
measure memento "check" "$M" check --repo "$R" --no-progress

# A FUSE read of one WAL segment (the first of space-a: 64 MiB unless the
# dataset is tiny) through the newest snapshot.
mkdir -p "$RSS_DIR/mnt"
seg=$(cd "$D/spaces" && find . -path '*/wal/*' -type f -size +60M | sort | head -1)
if [ -n "$seg" ]; then
  /usr/bin/time -o "$OUT/memento-mount.time" -f '%e %U %S %M' "$M" mount --repo "$R" --no-progress "$RSS_DIR/mnt" \
    >"$OUT/memento-mount.out" 2>"$OUT/memento-mount.err" &
  mpid=$!
  l0=$(cut -d' ' -f1 /proc/loadavg)
  sp=${seg#./}; sp=${sp%%/*}
  f=$RSS_DIR/mnt/spaces/$sp/latest/spaces/${seg#./}
  for _ in $(seq 1 600); do [ -e "$f" ] && break; kill -0 $mpid 2>/dev/null || break; sleep 0.5; done
  if cmp -s "$f" "$D/spaces/${seg#./}"; then mrc=0; else mrc=1; echo "bench-rss: $f differs from the data dir's" >&2; fi
  "$M" umount "$RSS_DIR/mnt" >/dev/null 2>&1
  wait $mpid || mrc=1
  l1=$(cut -d' ' -f1 /proc/loadavg)
  record memento "mount, read one 64 MiB WAL segment" $mrc "$(tail -1 "$OUT/memento-mount.time")" "$l0-$l1"
fi

"$SIM" mutate --dir "$D" --profile "$RSS_PROFILE" --seed $((RSS_SEED + 1)) >&2 || die "engram-sim mutate failed"
measure memento "backup (after a day)" "$M" backup --repo "$R" --data-dir "$D" --all --no-progress
measure memento "wal archive --all" "$M" wal archive --repo "$R" --data-dir "$D" --all --no-progress
# PITR: every space as it was at one instant, halfway through the range all
# spaces can be recovered to (the newest snapshots' WAL plus the archive).
pitr_at() {
  local lo=0 hi=0 sp a b
  for sp in $(find "$D/spaces" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort); do
    read -r a b < <("$M" pitr ranges --repo "$R" --space "$sp" 2>/dev/null |
      sed -n 's/.*seq [0-9]*\.\.[0-9]* (\([^ ]*\) \.\. \([^)]*\)).*/\1 \2/p' | tail -1)
    [ -n "$a" ] || return 1
    a=$(date -d "$a" +%s%N) b=$(date -d "$b" +%s%N)
    if [ "$lo" = 0 ] || [ "$a" -gt "$lo" ]; then lo=$a; fi
    if [ "$hi" = 0 ] || [ "$b" -lt "$hi" ]; then hi=$b; fi
  done
  [ "$lo" -le "$hi" ] && echo $(( (lo + hi) / 2 ))
}
if at=$(pitr_at); then
  measure memento "restore --all --at (PITR)" "$M" restore --repo "$R" --all --at "$at" --target "$RSS_DIR/pitr" --no-progress
  rm -rf "$RSS_DIR/pitr"
else
  echo "bench-rss: the spaces have no recoverable instant in common" >&2
  FAILED=1
fi
# forget keeps the newest verified snapshot: verify the new ones first so that
# the first ones go and prune has the day's rewritten data to drop.
"$M" verify --repo "$R" --all --latest --level L3 -q >/dev/null 2>&1
measure memento "forget --keep-last 1" "$M" forget --repo "$R" --all --keep-last 1 --no-progress
measure memento "prune" "$M" prune --repo "$R" --no-progress
if [ "$RSS_RESTIC" = 1 ]; then
  rm -rf "$R"
  restic -r "$RSS_DIR/restic" init --repository-version 2 -q || die "restic init failed"
  measure restic "backup (first)" restic -r "$RSS_DIR/restic" backup --compression auto -q "$D"
  measure restic "restore" restic -r "$RSS_DIR/restic" restore latest --target "$RSS_DIR/restore" -q
fi

echo
echo "peak RSS, $RSS_PROFILE at $RSS_SIZE (seed $RSS_SEED), $(nproc) cores, memento $("$M" version 2>/dev/null | head -1)"
echo
echo "| operation | tool | peak RSS MiB | wall s | CPU s | load (1 min, before-after) |"
echo "|---|---|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
exit $FAILED
