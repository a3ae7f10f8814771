#!/bin/bash
# prune killed (SIGKILL, MEMENTO_TEST_PRUNE_KILL_AFTER=N) after each of its
# changes to the repository, N = 1, 2, ... until it finishes, on a copy of one
# repository where it regroups (TREE backed up, edited twice with a dir copied
# under another path, the first snapshot forgotten); after each kill: check
# --read-data and a restore of every snapshot compared byte for byte, then a
# full prune, the same checks, and what a prune at 0% would still do.
# docs/benchmarks.md, "Issue 18, session 22: review of fmt5 and smallfb".
#
#   scripts/bench/prune-killsteps.sh BINARY WORKDIR TREE [MAX_UNUSED]
set -u
M=$1; W=$2; SRC=$3; MU=${4:-5%}
export MEMENTO_PASSWORD=benchpw
rm -rf $W; mkdir -p $W; cp -a $SRC $W/tree
export MEMENTO_CACHE_DIR=$W/c
$M init --repo $W/base -q --kdf-target 10ms
$M backup --repo $W/base -q --no-progress $W/tree
find $W/tree -type f -size -129k | sort | awk 'NR % 7 == 1' | while read -r f; do echo "# e" >> "$f"; done
cp -a $W/tree $W/tree1
find $W/tree -type f -size -129k | sort | awk 'NR % 9 == 2' | while read -r f; do echo "# f" >> "$f"; done
cp -r $W/tree/$(ls $W/tree | head -1) $W/tree/dupdir   # same files under other paths
$M backup --repo $W/base -q --no-progress $W/tree1
$M backup --repo $W/base -q --no-progress $W/tree
first=$($M snapshots --repo $W/base --json | jq -r '.[0].id'); $M forget --repo $W/base -q $first >/dev/null
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
sums $W/tree > $W/want; sums $W/tree1 > $W/want1
steps=$($M prune --repo $W/base --dry-run --json --max-unused $MU | jq -c '{packs_deleted,packs_repacked,groups_regrouped,index_files_deleted}')
echo "plan: $steps"
check() { # $1 repo, $2 label
  MEMENTO_CACHE_DIR=$W/c-$RANDOM $M check --repo $1 --read-data -q >$W/chk 2>&1 || { echo "FAIL check $2: $(tail -3 $W/chk)"; return 1; }
  for s in $($M snapshots --repo $1 --json | jq -r '.[].id'); do
    rm -rf $W/out; $M restore --repo $1 $s --target $W/out -q 2>$W/rerr || { echo "FAIL restore $2 $s: $(tail -2 $W/rerr)"; return 1; }
    p=$($M snapshots --repo $1 --json | jq -r ".[] | select(.id==\"$s\") | .paths[0]")
    w=$W/want; [ "$p" = "$W/tree1" ] && w=$W/want1
    diff -q <(sums $W/out$p) $w >/dev/null || { echo "FAIL restore compare $2 $s"; return 1; }
  done
}
n=1
while :; do
  rm -rf $W/r; cp -a $W/base $W/r
  out=$(MEMENTO_TEST_PRUNE_KILL_AFTER=$n $M prune --repo $W/r -q --no-progress --max-unused $MU 2>&1); rc=$?
  if [ $rc -ne 137 ]; then echo "n=$n: prune finished (rc $rc) before the kill: $out"; check $W/r "full"; break; fi
  $M unlock --repo $W/r -q >/dev/null 2>&1
  check $W/r "after kill $n ($out)" || exit 1
  $M prune --repo $W/r -q --no-progress --max-unused $MU > $W/p2 2>&1 || { echo "FAIL rerun after $n: $(tail -3 $W/p2)"; exit 1; }
  check $W/r "rerun after kill $n" || exit 1
  again=$($M prune --repo $W/r --dry-run --json --max-unused 0% | jq -c '{packs_deleted,packs_repacked,groups_regrouped}')
  echo "n=$n ok: $out; then at 0%: $again"
  n=$((n+1))
done
