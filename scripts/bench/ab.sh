#!/bin/bash
# Interleaved A/B of two memento binaries and restic on one plain-path tree
# (the gosrc profile) and one Engram data dir (the wal-heavy profile): an
# unchanged re-backup of each and a full restore of the tree, the page cache
# dropped before every run, ROUNDS rounds, the tool order rotated. Prints
# one line per run (wall s, user s, sys s, max RSS KiB, 1-min load) and the
# medians. The repositories must exist and hold a first backup of the same
# data (see docs/benchmarks.md, "Issue 18"); nothing is written elsewhere
# but the restore target.
#
#   OLD=/tmp/memento-main NEW=bin/memento TREE=/tmp/gosrc DATADIR=/tmp/wh \
#   W=/tmp/ab scripts/bench/ab.sh
#
# W holds the repositories: old-tree, new-tree, restic-tree, old-dd, new-dd,
# restic-dd. MEMENTO_PASSWORD and RESTIC_PASSWORD must be set. PARTS picks
# the parts to run (default "tree datadir restore"): PARTS=datadir with
# another W and DATADIR measures a second data-dir profile (TREE unused).
# PARTS=ddrestore restores the data dir's repositories whole (`restore --all
# --latest`, restic's `restore latest`).
set -u
: "${OLD:?} ${NEW:?} ${DATADIR:?} ${W:?}"
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-tree datadir restore}
TREE=${TREE:-}
part() { [[ " $PARTS " == *" $1 "* ]]; }
out=$W/ab.tsv
: >"$out"
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
run() { # LABEL CMD...
  local label=$1 l
  shift
  drop
  l=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -o "$W/t.txt" -f '%e %U %S %M' "$@" >/dev/null 2>"$W/err.txt" || echo "FAILED: $label: $(tail -n 2 "$W/err.txt")" >&2
  printf '%s\t%s\t%s\n' "$label" "$(cat "$W/t.txt")" "$l" | tee -a "$out"
}
latest() { "$1" snapshots --repo "$2" --json | sed -n 's/^ *"id": "\([0-9a-f]*\)".*/\1/p' | tail -n 1; }
tools=(old new restic)
for ((round = 0; round < ROUNDS; round++)); do
  for i in 0 1 2; do
    part tree || break
    t=${tools[(i + round) % 3]}
    case $t in
      restic) run "tree-unchanged restic" restic -r "$W/restic-tree" backup -q --compression auto "$TREE" ;;
      old) run "tree-unchanged old" "$OLD" backup --repo "$W/old-tree" --no-progress "$TREE" ;;
      new) run "tree-unchanged new" "$NEW" backup --repo "$W/new-tree" --no-progress "$TREE" ;;
    esac
  done
  for i in 0 1 2; do
    part datadir || break
    t=${tools[(i + round + 1) % 3]}
    case $t in
      restic) run "datadir-unchanged restic" restic -r "$W/restic-dd" backup -q --compression auto "$DATADIR" ;;
      old) run "datadir-unchanged old" "$OLD" backup --repo "$W/old-dd" --data-dir "$DATADIR" --all --no-progress ;;
      new) run "datadir-unchanged new" "$NEW" backup --repo "$W/new-dd" --data-dir "$DATADIR" --all --no-progress ;;
    esac
  done
  for i in 0 1 2; do
    part restore || break
    t=${tools[(i + round + 2) % 3]}
    rm -rf "$W/rt" && mkdir -p "$W/rt"
    case $t in
      restic) run "tree-restore restic" restic -r "$W/restic-tree" restore latest --target "$W/rt" -q ;;
      old) run "tree-restore old" "$OLD" restore --repo "$W/old-tree" "$(latest "$OLD" "$W/old-tree")" --target "$W/rt" --no-progress ;;
      new) run "tree-restore new" "$NEW" restore --repo "$W/new-tree" "$(latest "$NEW" "$W/new-tree")" --target "$W/rt" --no-progress ;;
    esac
  done
  for i in 0 1 2; do
    part ddrestore || break
    t=${tools[(i + round) % 3]}
    rm -rf "$W/rt" && mkdir -p "$W/rt"
    case $t in
      restic) run "datadir-restore restic" restic -r "$W/restic-dd" restore latest --target "$W/rt" -q ;;
      old) run "datadir-restore old" "$OLD" restore --repo "$W/old-dd" --all --latest --target "$W/rt" --no-progress ;;
      new) run "datadir-restore new" "$NEW" restore --repo "$W/new-dd" --all --latest --target "$W/rt" --no-progress ;;
    esac
  done
done
rm -rf "$W/rt"
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }'; }
cut -f1 "$out" | sort -u | while IFS= read -r k; do
  rows=$(awk -F'\t' -v k="$k" '$1 == k { print $2 }' "$out")
  printf '%-26s median wall %6s s, CPU %5s s (%d runs)\n' "$k" "$(awk '{ print $1 }' <<<"$rows" | median)" \
    "$(awk '{ print $2 + $3 }' <<<"$rows" | median)" "$(wc -l <<<"$rows")"
done
