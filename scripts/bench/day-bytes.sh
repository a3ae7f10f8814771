#!/bin/bash
# day-bytes.sh: where every byte the benchmark's day stores goes (issue 18's
# "after a day ... with <= 1.5x the truly new bytes stored").
#
# Usage: MEMENTO_PASSWORD=pw scripts/bench/day-bytes.sh MEMENTO REPO CACHE DATADIR [PROFILE]
#
# REPO, CACHE and DATADIR are COPIES (they are changed): a repository after a
# first backup of DATADIR (`backup --data-dir DATADIR --all`), its cache dir
# and the data dir. It runs what scripts/bench.sh runs for the day on a data
# dir: `wal archive --all` (all WAL, after the first backup), `engram-sim
# mutate --profile PROFILE --seed 2`, `wal archive --all` (the day's WAL), the
# backup after the day. After each step it prints the bytes the step added to
# the repository by kind of file (data = packs, index, snapshots, wal =
# archive records, logs = audit trail, other: directories and the rest; du -sb
# of the repository less the 4 MiB .tmp-reserve file, as bench.sh counts), and
# at the end the bytes the day truly made new (as bench.sh's day_new_bytes)
# and the ratio.
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,17p' "$0"; exit 2; }
M=$1 R=$2 C=$3 D=$4 P=${5:-default}
SIM=${SIM:-$(dirname "$0")/../../bin/engram-sim}
export MEMENTO_CACHE_DIR=$C
rb() { echo $(($(du -sb "$R" | cut -f1) - $(stat -c %s "$R/.tmp-reserve" 2>/dev/null || echo 0))); }
listing() { (cd "$R" && find . -type f ! -name .tmp-reserve -printf '%s %P\n' | LC_ALL=C sort -k2); }
step() { # NAME: prints the bytes the step added, by top-level directory
  local now after
  after=$(rb)
  now=$(listing)
  join -1 2 -2 2 -a 2 -e 0 -o 0,1.1,2.1 <(printf '%s\n' "$PREV_LIST") <(printf '%s\n' "$now") |
    awk -v name="$1" -v total=$((after - PREV_BYTES)) '
      { split($1, a, "/"); d[a[1]] += $3 - $2; n[a[1]] += ($2 == 0) }
      END { s = 0; line = sprintf("%-12s %11d bytes:", name, total)
            for (k in d) if (d[k] != 0) { line = line sprintf(" %s %d (%d new files)", k, d[k], n[k]); s += d[k] }
            print line sprintf(" other %d", total - s) }'
  PREV_LIST=$now PREV_BYTES=$after
}
PREV_LIST=$(listing) PREV_BYTES=$(rb)
"$M" wal archive --repo "$R" --data-dir "$D" --all >/dev/null
step "archive all"
wal_before=$(find "$D"/spaces/*/wal -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
day_start=$PREV_BYTES
"$SIM" mutate --profile "$P" --dir "$D" --seed 2 | tee /tmp/day-bytes-mutate.$$.log
"$M" wal archive --repo "$R" --data-dir "$D" --all >/dev/null
step "archive day"
"$M" backup --repo "$R" --data-dir "$D" --all --no-progress >/dev/null
step "backup day"
wal=$(($(find "$D"/spaces/*/wal -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}') - wal_before))
warm=$(sed -n 's/.*warm \([0-9]*\) of [0-9]* pages rewritten.*/\1/p' /tmp/day-bytes-mutate.$$.log | awk '{s += $1 * 4096} END {printf "%.0f", s}')
cold=$(sed -n 's/.*cold seg-[0-9]*\.col (\([0-9]*\) bytes.*/\1/p' /tmp/day-bytes-mutate.$$.log | awk '{s += $1} END {printf "%.0f", s}')
hot=$(find "$D"/spaces/*/hot "$D"/spaces/*/checkpoint.json -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
rm -f /tmp/day-bytes-mutate.$$.log
new=$((wal + warm + cold + hot))
stored=$((PREV_BYTES - day_start))
echo "truly new: WAL $wal + warm pages $warm + cold $cold + hot files and checkpoint.json $hot = $new bytes"
awk -v s="$stored" -v n="$new" 'BEGIN {printf "the day stored %d bytes (%.2f MiB) = %.3fx the %.2f MiB truly new\n", s, s / 1048576, s / n, n / 1048576}'
