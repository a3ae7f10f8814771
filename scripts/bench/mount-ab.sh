#!/usr/bin/env bash
# mount-ab.sh: the FUSE rows of scripts/bench.sh (mountwal, mountwarm,
# mountcold: the largest WAL segment, warm page file and cold segment after
# the day, read once with dd through a fresh mount, page cache dropped
# before the clock starts, mount start-up not timed), for several memento
# binaries and restic interleaved, without the rest of the benchmark.
#
#   scripts/bench/mount-ab.sh setup PROFILE...         # 1 GiB data dir, memento and restic repos, the day
#   scripts/bench/mount-ab.sh run PROFILE RUNS TOOL... # TOOL: restic or a memento binary
#   scripts/bench/mount-ab.sh shared RUNS JOB... -- TOOL...  # repositories made elsewhere
#
# Environment: MOUNT_AB_DIR [/tmp/mount-ab] (PROFILE's data under $MOUNT_AB_DIR-PROFILE),
# MOUNT_AB_SIZE [1G], KINDS [wal warm cold]. Output, one line per read:
# profile kind tool wall-s cpu-s (dd's and the mount server's during dd) bytes
# server-peak-RSS-MiB load1. Needs root (drop_caches), fuse3, restic.
#
# shared: JOB is PROFILE:KIND, KIND wal, warm, cold (the largest of that kind
# in $DATA/PROFILE, a data dir backed up with --data-dir) or big (the largest
# file of $DATA/PROFILE, a tree backed up as a path, read by the path restic's
# row uses). DATA [/work/wt/data] holds PROFILE/ (the source), r-PROFILE and
# rr-PROFILE (memento's and restic's repositories), cache-PROFILE and
# rcache-PROFILE (their caches, copied to $MOUNT_AB_DIR-shared first, never
# written). Password of both: MOUNT_AB_PASSWORD [pw]. The mount server's CPU
# is the sum of its threads' /proc/PID/task/*/schedstat (ns) in every mode.
set -uo pipefail
cmd=${1:-}
shift || true
base=${MOUNT_AB_DIR:-/tmp/mount-ab}
export MEMENTO_PASSWORD=memento-bench RESTIC_PASSWORD=memento-bench
declare -A pat=([wal]='*/wal/wal-*.log' [warm]='*/warm/*' [cold]='*/cold/seg-*.col' [big]='*')

# server_cpu PID prints the CPU seconds of PID's threads (ns precision).
server_cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.6f", s / 1e9}'; }

# timed_read PROFILE KIND TOOL PID FILE MNT OUTDIR: the bench's timed read of
# FILE through the mount served by PID (page cache dropped first), one line
# of output, then the unmount.
timed_read() {
  local p=$1 kind=$2 t=$3 pid=$4 f=$5 mnt=$6 out=$7 bytes c0 c1 t0 t1 rss i
  bytes=$(stat -L -c %s "$f") || exit 1
  sync && echo 3 >/proc/sys/vm/drop_caches
  c0=$(server_cpu "$pid")
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$out/time.out" bash -c "dd if='$f' of=/dev/null bs=1M status=none; sync"
  t1=$(date +%s.%N)
  c1=$(server_cpu "$pid")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  awk -v p="$p" -v k="$kind" -v t="$(basename "$t")" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" \
    -v tt="$(cat "$out/time.out")" -v by="$bytes" -v rss="$rss" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN {split(tt, u, " "); printf "%s\t%s\t%s\t%.3f\t%.3f\t%d\t%d\t%s\n", p, k, t, b-a, u[1]+u[2]+c1-c0, by, rss/1024, l}'
  fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case $cmd in
setup)
  for p in "$@"; do
    D=$base-$p
    rm -rf "$D" && mkdir -p "$D"
    export MEMENTO_CACHE_DIR=$D/cache-m RESTIC_CACHE_DIR=$D/cache-r
    "$ROOT/bin/engram-sim" generate --profile "$p" --dir "$D/live" --size "${MOUNT_AB_SIZE:-1G}" --spaces 3 --seed 1 >"$D/gen.log" 2>&1 || exit 1
    "$ROOT/bin/memento" init --repo "$D/mem" >/dev/null && restic -r "$D/restic" init --repository-version 2 >/dev/null || exit 1
    for day in 1 2; do
      [ $day = 2 ] && { "$ROOT/bin/engram-sim" mutate --profile "$p" --dir "$D/live" --seed 2 >"$D/mutate.log" 2>&1 || exit 1; }
      "$ROOT/bin/memento" backup --repo "$D/mem" --data-dir "$D/live" --all --no-progress >/dev/null || exit 1
      restic -r "$D/restic" backup --compression auto -q "$D/live" || exit 1
    done
  done ;;
run)
  p=$1 runs=$2
  shift 2
  D=$base-$p
  export MEMENTO_CACHE_DIR=$D/cache-m RESTIC_CACHE_DIR=$D/cache-r
  LIVE=$D/live mnt=$D/mnt
  for ((r = 1; r <= runs; r++)); do
    for kind in ${KINDS:-wal warm cold}; do
      rl=$(cd "$LIVE" && find . -type f -path "${pat[$kind]}" -printf '%s %P\n' | sort -n | tail -n1 | cut -d' ' -f2-)
      space=${rl#spaces/} && space=${space%%/*}
      inner=${rl#spaces/"$space"/}
      for t in "$@"; do
        mkdir -p "$mnt"
        if [ "$t" = restic ]; then
          restic -r "$D/restic" mount "$mnt" >"$D/mount.log" 2>&1 &
          f=$mnt/snapshots/latest$LIVE/$rl
        else
          "$t" mount --repo "$D/mem" "$mnt" >"$D/mount.log" 2>&1 &
          f=$mnt/spaces/$space/latest/spaces/$space/$inner
        fi
        pid=$!
        for ((i = 0; i < 600; i++)); do [ -e "$mnt/snapshots/latest" ] && break; sleep 0.1; done
        timed_read "$p" "$kind" "$t" "$pid" "$f" "$mnt" "$D"
      done
    done
  done ;;
shared)
  DATA=${DATA:-/work/wt/data} D=$base-shared runs=$1
  export MEMENTO_PASSWORD=${MOUNT_AB_PASSWORD:-pw} RESTIC_PASSWORD=${MOUNT_AB_PASSWORD:-pw}
  shift
  jobs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do jobs+=("$1"); shift; done
  shift
  mnt=$D/mnt
  mkdir -p "$mnt"
  for ((r = 1; r <= runs; r++)); do
    for job in "${jobs[@]}"; do
      p=${job%%:*} kind=${job#*:} src=$DATA/${job%%:*}
      for c in cache rcache; do [ -d "$D/$c-$p" ] || cp -a "$DATA/$c-$p" "$D/$c-$p"; done
      rl=$(cd "$src" && find . -type f -path "${pat[$kind]}" -printf '%s %P\n' | sort -n | tail -n1 | cut -d' ' -f2-)
      space=${rl#spaces/} && space=${space%%/*}
      for t in "$@"; do
        if [ "$t" = restic ]; then
          RESTIC_CACHE_DIR=$D/rcache-$p restic -r "$DATA/rr-$p" mount "$mnt" >"$D/mount.log" 2>&1 &
          f=$mnt/snapshots/latest$src/$rl
        else
          MEMENTO_CACHE_DIR=$D/cache-$p "$t" mount --repo "$DATA/r-$p" "$mnt" >"$D/mount.log" 2>&1 &
          f=$mnt/snapshots/latest$src/$rl
          [ "$kind" = big ] || f=$mnt/spaces/$space/latest/spaces/$space/${rl#spaces/"$space"/}
        fi
        pid=$!
        for ((i = 0; i < 600; i++)); do [ -e "$mnt/snapshots/latest" ] && break; sleep 0.1; done
        timed_read "$p" "$kind" "$t" "$pid" "$f" "$mnt" "$D"
      done
    done
  done ;;
*) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
