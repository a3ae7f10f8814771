#!/bin/bash
# Interleaved A/B of the day (issue 18) between two memento binaries that
# each need a repository of their own format (format 4's delta blobs against
# main's format 3): each binary `init`s a fresh repository, backs up a copy
# of DATA (a data dir) and archives its WAL; the day is applied once
# (engram-sim mutate --profile PROFILE --seed 2, as scripts/bench/day-bytes.sh);
# both archive the day's WAL; then ROUNDS rounds of the day's backup, OLD and
# NEW alternating, each from a copy of the state before it, the page cache
# dropped before every run; the day's stored bytes of each and the truly new
# bytes (day-bytes.sh's accounting); ROUNDS rounds of `restore --all --latest`;
# sha256sum of every restored file against the live data dir; `verify --level
# L2` and a FUSE mount read (cmp) of each space's warm page file with NEW.
# Prints wall, user, system s, max RSS KiB and the 1-minute load per run.
# See docs/benchmarks.md, "Issue 18, session 11".
#
#   OLD=/work/wt/profiles/memento-main11 NEW=bin/memento SIM=bin/engram-sim \
#   DATA=/work/wt/data/def PROFILE=default W=/tmp/abfmt MEMENTO_PASSWORD=pw \
#   scripts/bench/ab-day-format.sh
set -uo pipefail
: "${OLD:?} ${NEW:?} ${SIM:?} ${DATA:?} ${PROFILE:?} ${W:?}"
ROUNDS=${ROUNDS:-3}
rm -rf "$W"; mkdir -p "$W"
cp -a "$DATA" "$W/D"
rb() { echo $(($(du -sb "$1" | cut -f1) - $(stat -c %s "$1/.tmp-reserve" 2>/dev/null || echo 0))); }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
t() { /usr/bin/time -f '%e %U %S %M' -o "$W/time.tmp" "$@" >/dev/null 2>>"$W/err.log"; echo "$(cat "$W/time.tmp") rc $? load $(cut -d' ' -f1 /proc/loadavg)"; }
bin() { if [ "$1" = new ]; then echo "$NEW"; else echo "$OLD"; fi; }
for X in old new; do
  M=$(bin $X); mkdir -p "$W/C-$X"
  MEMENTO_CACHE_DIR=$W/C-$X $M init --repo "$W/R-$X" >/dev/null
  drop; echo "first backup $X: $(MEMENTO_CACHE_DIR=$W/C-$X t "$M" backup --repo "$W/R-$X" --data-dir "$W/D" --all --no-progress)"
  MEMENTO_CACHE_DIR=$W/C-$X $M wal archive --repo "$W/R-$X" --data-dir "$W/D" --all >/dev/null
  echo "repository $X after the first backup and archive: $(rb "$W/R-$X") bytes"
done
wal_before=$(find "$W/D"/spaces/*/wal -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
"$SIM" mutate --profile "$PROFILE" --dir "$W/D" --seed 2 >"$W/mutate.log"
declare -A start
for X in old new; do
  M=$(bin $X); start[$X]=$(rb "$W/R-$X")
  MEMENTO_CACHE_DIR=$W/C-$X $M wal archive --repo "$W/R-$X" --data-dir "$W/D" --all >/dev/null
  echo "archive of the day $X: $(($(rb "$W/R-$X") - ${start[$X]})) bytes"
  cp -a "$W/R-$X" "$W/R-$X.pre"; cp -a "$W/C-$X" "$W/C-$X.pre"
done
for r in $(seq 1 "$ROUNDS"); do
  for X in old new; do
    M=$(bin $X)
    rm -rf "$W/R-$X" "$W/C-$X"; cp -a "$W/R-$X.pre" "$W/R-$X"; cp -a "$W/C-$X.pre" "$W/C-$X"
    drop; echo "round $r day backup $X: $(MEMENTO_CACHE_DIR=$W/C-$X t "$M" backup --repo "$W/R-$X" --data-dir "$W/D" --all --no-progress) day stored $(($(rb "$W/R-$X") - ${start[$X]}))"
  done
done
rm -rf "$W"/*.pre
wal=$(($(find "$W/D"/spaces/*/wal -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}') - wal_before))
warm=$(sed -n 's/.*warm \([0-9]*\) of [0-9]* pages rewritten.*/\1/p' "$W/mutate.log" | awk '{s += $1 * 4096} END {printf "%.0f", s}')
cold=$(sed -n 's/.*cold seg-[0-9]*\.col (\([0-9]*\) bytes.*/\1/p' "$W/mutate.log" | awk '{s += $1} END {printf "%.0f", s}')
hot=$(find "$W/D"/spaces/*/hot "$W/D"/spaces/*/checkpoint.json -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
new=$((wal + warm + cold + hot))
echo "truly new: WAL $wal + warm pages $warm + cold $cold + hot files and checkpoint.json $hot = $new bytes"
for X in old new; do
  awk -v s=$(($(rb "$W/R-$X") - ${start[$X]})) -v n=$new -v x=$X 'BEGIN {printf "%s: the day stored %d bytes = %.3fx the truly new\n", x, s, s / n}'
done
for r in $(seq 1 "$ROUNDS"); do
  for X in old new; do
    M=$(bin $X); rm -rf "$W/T-$X"
    drop; echo "round $r restore $X: $(MEMENTO_CACHE_DIR=$W/C-$X t "$M" restore --repo "$W/R-$X" --all --latest --target "$W/T-$X" --no-progress)"
  done
done
(cd "$W/D" && find . -type f ! -path './.memento/*' -print0 | sort -z | xargs -0 sha256sum) >"$W/live.sha"
for X in old new; do
  (cd "$W/T-$X" && find . -type f ! -path './.memento/*' -print0 | sort -z | xargs -0 sha256sum) >"$W/restored-$X.sha"
  if cmp -s "$W/live.sha" "$W/restored-$X.sha"; then echo "restore $X: byte-exact ($(wc -l <"$W/live.sha") files)"; else echo "restore $X: DIFFERS"; fi
done
rm -rf "$W/T-old" "$W/T-new"
drop; MEMENTO_CACHE_DIR=$W/C-new $NEW verify --repo "$W/R-new" --all --latest --level L2 >"$W/verify.log" 2>&1
echo "verify L2 new: exit $?, $(grep -c 'L2 PASSED' "$W/verify.log") spaces passed"
mkdir -p "$W/mnt"
MEMENTO_CACHE_DIR=$W/C-new $NEW mount --repo "$W/R-new" "$W/mnt" >"$W/mount.log" 2>&1 &
mp=$!
for _ in $(seq 1 60); do [ -d "$W/mnt/spaces" ] && break; sleep 1; done
for s in $(ls "$W/D/spaces"); do
  f=$(find -L "$W/mnt/spaces/$s/latest/" -path "*/warm/warm_tier.dat" -type f 2>/dev/null | head -n 1)
  drop
  if [ -n "$f" ] && cmp -s "$f" "$W/D/spaces/$s/warm/warm_tier.dat"; then echo "mount $s warm_tier.dat: bytes equal"; else echo "mount $s warm_tier.dat: DIFFERS or missing"; fi
done
kill "$mp"; wait "$mp"
