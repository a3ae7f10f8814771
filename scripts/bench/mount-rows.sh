#!/usr/bin/env bash
# mount-rows.sh: the FUSE rows of scripts/bench.sh (mount_read) on repositories
# that already exist, several memento binaries and restic interleaved: a fresh
# mount per read, the file looked up before the clock (by the path restic's
# row uses), sync and drop_caches, then the bench's timed command
# (timeout bash -c "dd bs=1M; sync"). CPU is dd's plus the mount server's
# during dd (all its threads, /proc/PID/task/*/schedstat).
#
#   scripts/bench/mount-rows.sh RUNS JOB... -- TOOL...
#
# JOB is PROFILE:KIND with KIND wal, warm, cold (the largest of that kind in
# $DATA/PROFILE, an Engram data dir backed up with --data-dir) or big (the
# largest file of $DATA/PROFILE, a tree backed up as a path). TOOL is restic or
# a memento binary. Layout of DATA (default /work/wt/data, made by its make.sh):
# PROFILE/ the source, r-PROFILE memento's repository, rr-PROFILE restic's,
# cache-PROFILE and rcache-PROFILE their caches (copied to $OUT first, never
# written). OUT [/tmp/mount-rows]. MEMENTO_PASSWORD and RESTIC_PASSWORD [pw].
# Output, one line per read: profile kind tool wall-s cpu-s server-cpu-s bytes load1.
# Needs root (drop_caches), fuse3, restic.
set -uo pipefail
DATA=${DATA:-/work/wt/data} OUT=${OUT:-/tmp/mount-rows}
export MEMENTO_PASSWORD=${MEMENTO_PASSWORD:-pw} RESTIC_PASSWORD=${RESTIC_PASSWORD:-pw}
[ $# -ge 3 ] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
runs=$1
shift
jobs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do jobs+=("$1"); shift; done
shift
mkdir -p "$OUT/mnt"
mnt=$OUT/mnt
cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.6f", s / 1e9}'; }
declare -A pat=([wal]='*/wal/wal-*.log' [warm]='*/warm/*' [cold]='*/cold/seg-*.col' [big]='*')
for ((r = 1; r <= runs; r++)); do
  for job in "${jobs[@]}"; do
    p=${job%%:*} k=${job#*:} src=$DATA/${job%%:*}
    for c in cache rcache; do [ -d "$OUT/$c-$p" ] || cp -a "$DATA/$c-$p" "$OUT/$c-$p"; done
    rel=$(cd "$src" && find . -type f -path "${pat[$k]}" -printf '%s %P\n' | sort -n | tail -n1 | cut -d' ' -f2-)
    for t in "$@"; do
      if [ "$t" = restic ]; then
        RESTIC_CACHE_DIR=$OUT/rcache-$p restic -r "$DATA/rr-$p" mount "$mnt" >"$OUT/mount.log" 2>&1 &
        f=$mnt/snapshots/latest$src/$rel
      else
        MEMENTO_CACHE_DIR=$OUT/cache-$p "$t" mount --repo "$DATA/r-$p" "$mnt" >"$OUT/mount.log" 2>&1 &
        if [ "$k" = big ]; then
          f=$mnt/snapshots/latest$src/$rel
        else
          s=${rel#spaces/} && s=${s%%/*}
          f=$mnt/spaces/$s/latest/spaces/$s/${rel#spaces/"$s"/}
        fi
      fi
      pid=$!
      for ((i = 0; i < 600; i++)); do [ -e "$mnt/snapshots/latest" ] && break; sleep 0.1; done
      bytes=$(stat -L -c %s "$f") || exit 1
      sync && echo 3 >/proc/sys/vm/drop_caches
      c0=$(cpu $pid) t0=$(date +%s.%N)
      /usr/bin/time -f '%U %S' -o "$OUT/time.out" timeout -k 10 600 bash -c "dd if='$f' of=/dev/null bs=1M status=none; rc=\$?; sync; exit \$rc"
      t1=$(date +%s.%N) c1=$(cpu $pid)
      awk -v p="$p" -v k="$k" -v t="$(basename "$t")" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" \
        -v tt="$(cat "$OUT/time.out")" -v by="$bytes" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
        'BEGIN {split(tt, u, " "); printf "%s\t%s\t%s\t%.3f\t%.3f\t%.3f\t%d\t%s\n", p, k, t, b-a, u[1]+u[2]+c1-c0, c1-c0, by, l}'
      fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
      for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    done
  done
done
