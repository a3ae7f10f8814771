#!/bin/bash
# init --format against the real old binaries: for each format N from 2 to 5,
# a binary of format N is built from the last commit of that format; NEW
# creates a repository with `init --format N` and backs up a tree of small
# files (gosrc's net/http) and a 24 MB engram-sim data dir (2 spaces); the old
# binary checks --read-data, restores the path snapshot (compared byte for
# byte), verifies the spaces at L2 and backs up an edited tree; NEW forgets
# the first path snapshot, prunes at 0 % and checks; the old binary checks
# again, restores the edited tree and prunes. Last, each old binary is shown a
# format-6 repository, which it must refuse. One line per step: ok or
# FAIL(exit code). docs/benchmarks.md, "Issue 18, session 21: init --format".
#
#   MEMENTO_PASSWORD=benchpw scripts/bench/init-format-xver.sh bin/memento bin/engram-sim /tmp/xver [/work/wt/data/gosrc]
set -u
NEW=$(realpath "$1"); SIM=$(realpath "$2"); W=$3; GOSRC=${4:-/work/wt/data/gosrc}
: "${MEMENTO_PASSWORD:?}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$W"; mkdir -p "$W"
# The commit that made format N+1: its parent is the last commit of format N.
declare -A bump=([2]=f7e0e2c [3]=7f60c0f [4]=ee4243d [5]=f5f8a06)
for n in 2 3 4 5; do
  mkdir -p "$W/src$n"
  git -C "$ROOT" archive "${bump[$n]}^" | tar -x -C "$W/src$n"
  (cd "$W/src$n" && go build -trimpath -o "$W/memento-f$n" ./cmd/memento) || exit 1
done
cp -a "$GOSRC/net/http" "$W/tree"
"$SIM" generate --dir "$W/engram" --size 24MB --spaces 2 >/dev/null
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
pathsn() { "$1" snapshots --repo "$2" --json | jq -r "[.[] | select(.space == null or .space == \"\")][$3].id"; }
ok() { if [ "$1" = 0 ]; then echo "  ok   $2"; else echo "  FAIL($1) $2"; fi; }
for n in 2 3 4 5; do
  OLD=$W/memento-f$n; R=$W/r$n
  echo "format $n ($($OLD version | head -1))"
  export MEMENTO_CACHE_DIR=$W/cache-new-$n
  $NEW init --repo "$R" --format $n --kdf-target 10ms >/dev/null; ok $? "new: init --format $n: $(grep -o '"version": [0-9]*\|"encryption": "[^"]*"' "$R/config" | tr '\n' ' ')"
  $NEW backup --repo "$R" --no-progress -q "$W/tree"; ok $? "new: path backup"
  $NEW backup --repo "$R" --no-progress -q --data-dir "$W/engram" --all; ok $? "new: engram backup --all"
  export MEMENTO_CACHE_DIR=$W/cache-old-$n
  $OLD check --repo "$R" --read-data >/dev/null 2>&1; ok $? "old f$n: check --read-data"
  rm -rf "$W/t"; $OLD restore --repo "$R" "$(pathsn "$OLD" "$R" -1)" --target "$W/t" >/dev/null 2>&1
  diff <(sums "$W/tree") <(sums "$W/t/${W#/}/tree") >/dev/null; ok $? "old f$n: restore of the path snapshot byte-equal"
  $OLD verify --repo "$R" --all --level L2 >/dev/null 2>&1; ok $? "old f$n: verify --all --level L2 (engram spaces)"
  echo "edit" >>"$W/tree/server.go"
  $OLD backup --repo "$R" --no-progress -q "$W/tree"; ok $? "old f$n: path backup into it"
  export MEMENTO_CACHE_DIR=$W/cache-new-$n
  $NEW forget --repo "$R" "$(pathsn "$NEW" "$R" 0)" -q >/dev/null; ok $? "new: forget the first path snapshot"
  $NEW prune --repo "$R" --no-progress -q --max-unused 0%; ok $? "new: prune --max-unused 0%"
  $NEW check --repo "$R" --read-data >/dev/null 2>&1; ok $? "new: check --read-data"
  export MEMENTO_CACHE_DIR=$W/cache-old-$n
  $OLD check --repo "$R" --read-data >/dev/null 2>&1; ok $? "old f$n: check --read-data after the new binary's prune"
  rm -rf "$W/t"; $OLD restore --repo "$R" "$(pathsn "$OLD" "$R" -1)" --target "$W/t" >/dev/null 2>&1
  diff <(sums "$W/tree") <(sums "$W/t/${W#/}/tree") >/dev/null; ok $? "old f$n: restore of the edited tree byte-equal"
  $OLD prune --repo "$R" --no-progress -q >/dev/null 2>&1; ok $? "old f$n: prune"
  cp "$GOSRC/net/http/server.go" "$W/tree/server.go"
done
export MEMENTO_CACHE_DIR=$W/cache-new-6
$NEW init --repo "$W/r6" --kdf-target 10ms >/dev/null
for n in 2 3 4 5; do
  out=$(MEMENTO_CACHE_DIR=$W/cache-old-6 "$W/memento-f$n" snapshots --repo "$W/r6" 2>&1); code=$?
  echo "old f$n on a format-6 repository: exit $code: $out"
done
