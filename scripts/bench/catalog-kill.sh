#!/bin/bash
# backup --all killed (SIGKILL) with its snapshots' catalog entries still
# deferred (Repository.DeferCatalog), then every reader of the catalog:
# snapshots (listed = files in snapshots/), the next backup --all (its
# parents: the killed run's snapshots, their files unchanged), forget
# --keep-last 1 --prune, check --read-data and restore --all --latest
# compared with the data dir. Kill points: once the Kth snapshot file of
# the run appears (K = 1..8), and after the 8th once the local index
# changes (the catalog's one commit) plus DELAY. Then a forget started
# beside a running backup --all (another process) at several delays.
# docs/benchmarks.md, "Issue 18, session 25: data-loss review of session 24".
#
#   scripts/bench/catalog-kill.sh BINARY SIM WORKDIR
set -u
M=$1; SIM=$2; W=$3
export MEMENTO_PASSWORD=benchpw
rm -rf "$W"; mkdir -p "$W"
export MEMENTO_CACHE_DIR=$W/cache0
$SIM generate --dir $W/d8 --size 160MB --spaces 8 --segment-size 4MiB --seed 5 >/dev/null
$M init --repo $W/repo0 -q >/dev/null
$M backup --repo $W/repo0 --data-dir $W/d8 --all --no-progress -q
cat >$W/killat.py <<'PY'
import os, sys, subprocess, signal, time
# killat.py SNAPDIR K DB DELAY CMD...: SIGKILL CMD once SNAPDIR holds K more
# entries (temporary files count: the Kth snapshot is being written); with
# K = 0, once 8 finished snapshots are there and DB then changes, DELAY later.
d, k, db, delay, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5:]
fin = lambda: [x for x in os.listdir(d) if 'tmp' not in x]
base, base_all = len(fin()), len(os.listdir(d))
st = lambda: (os.stat(db).st_mtime_ns, os.stat(db).st_size)
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
s0 = None
while p.poll() is None:
    if k > 0 and len(os.listdir(d)) >= base_all + k:
        os.kill(p.pid, signal.SIGKILL); break
    if k == 0 and s0 is None and len(fin()) >= base + 8:
        s0 = st()
    elif k == 0 and s0 is not None and st() != s0:
        time.sleep(delay); os.kill(p.pid, signal.SIGKILL); break
    time.sleep(0.0001)
p.wait()
PY
fails=0
after() { # TAG: the checks on $w after the kill
  local tag=$1 saved listed files unch d
  saved=$(($(ls $w/repo/snapshots | wc -l) - 8))
  listed=$($M snapshots --repo $w/repo -q 2>&1 | grep -c '^[0-9a-f]\{8\} ')
  files=$(ls $w/repo/snapshots | wc -l)
  $M unlock --repo $w/repo >/dev/null 2>&1
  $M backup --repo $w/repo --data-dir $w/d8 --all --no-progress >$w/b2 2>&1 || { echo "FAIL $tag: backup: $(tail -2 $w/b2)"; fails=$((fails + 1)); }
  unch=$(grep -o "[0-9]* unchanged file" $w/b2 | awk '{s += $1} END {print s + 0}')
  $M forget --repo $w/repo --all --keep-last 1 --prune >$w/f 2>&1 || { echo "FAIL $tag: forget: $(tail -2 $w/f)"; fails=$((fails + 1)); }
  $M check --repo $w/repo --read-data >$w/c 2>&1 || { echo "FAIL $tag: check: $(tail -3 $w/c)"; fails=$((fails + 1)); }
  $M restore --repo $w/repo --all --latest --target $w/rt --no-progress >$w/r 2>&1 || { echo "FAIL $tag: restore: $(tail -2 $w/r)"; fails=$((fails + 1)); }
  d=$(diff -r -x .memento $w/rt $w/d8 | wc -l)
  [ "$listed" = "$files" ] && [ "$d" = 0 ] || { echo "FAIL $tag: listed $listed of $files, restore differs in $d lines"; fails=$((fails + 1)); }
  echo "$tag: $saved snapshots more than the base's 8, listed $listed of $files files, next backup's unchanged files $unch (12 per space saved by the run), restore diff $d lines"
}
fresh() { # SEED: a copy of the base with a day applied
  w=$W/w; rm -rf $w; mkdir -p $w
  cp -a $W/d8 $w/d8; cp -a $W/repo0 $w/repo; cp -a $W/cache0 $w/cache
  export MEMENTO_CACHE_DIR=$w/cache
  $SIM mutate --dir $w/d8 --seed $1 >/dev/null
}
for k in 1 2 3 4 5 6 7 8 0 0 0; do
  fresh 150
  delay=0; [ $k = 0 ] && delay=$(awk -v r=$RANDOM 'BEGIN { printf "%.4f", r / 32768 / 200 }')
  python3 $W/killat.py $w/repo/snapshots $k "$(echo $w/cache/*/index.db)" $delay $M backup --repo $w/repo --data-dir $w/d8 --all --no-progress
  if [ $k = 0 ]; then after "kill in the catalog's commit (+${delay}s)"; else after "kill as snapshot $k is written"; fi
done
for d in 0.3 0.9 1.1 1.3 1.5; do
  fresh 160
  $M backup --repo $w/repo --data-dir $w/d8 --all --no-progress >/dev/null 2>&1 &
  p=$!; sleep $d
  $M forget --repo $w/repo --all --keep-last 1 >$w/f0 2>&1 || { echo "FAIL forget beside backup: $(tail -2 $w/f0)"; fails=$((fails + 1)); }
  wait $p || { echo "FAIL backup beside forget"; fails=$((fails + 1)); }
  echo "forget ${d}s into backup --all: $(tail -1 $w/f0)"
  after "forget ${d}s into backup --all"
done
rm -rf $W/w
echo "failures: $fails"
