#!/bin/bash
# Dead bytes of grouped small files (format 6): edit/prune cycles on a copy
# of a tree of small files. Each cycle appends a line to every 20th file of
# at most 128 KiB (sorted paths), backs up, keeps the last snapshot and
# prunes (default --max-unused 10 %); the repository's size is printed after
# each cycle, then a fresh backup's of the last state, for comparison, and
# what each prune cost: "wrote" the bytes of the packs it wrote (the copies
# and the new groups), "removed" the bytes of the packs it deleted (those of
# them repacked were read whole first: packs_repacked), groups_regrouped, bytes_regrouped (the live member plaintext moved into
# new groups), and its wall and CPU seconds.
#
#   MEMENTO_PASSWORD=benchpw [PRUNE_ARGS="--max-unused 5%"] scripts/bench/group-cycles.sh BINARY WORKDIR [TREE] [CYCLES]
#
# docs/benchmarks.md, "Issue 18, session 20: grouped small files, the
# repository side".
set -e
M=$1; W=$2; SRC=${3:-/work/wt/data/pystd}; N=${4:-4}
[ -n "$M" ] && [ -n "$W" ] || { echo "usage: $0 BINARY WORKDIR [TREE] [CYCLES]" >&2; exit 2; }
export MEMENTO_CACHE_DIR=$W/cache
rm -rf "$W"; mkdir -p "$W"; cp -a "$SRC" "$W/tree"
"$M" init --repo "$W/repo" -q
"$M" backup --repo "$W/repo" --no-progress -q "$W/tree"
echo "cycle 0: $(du -sb "$W/repo" | cut -f1)"
for c in $(seq 1 "$N"); do
	find "$W/tree" -type f -size -129k | sort | awk -v c="$c" 'NR % 20 == c' | while read -r f; do echo "# edit $c" >>"$f"; done
	"$M" backup --repo "$W/repo" --no-progress -q "$W/tree"
	"$M" forget --repo "$W/repo" --all --keep-last 1 -q >/dev/null
	find "$W/repo/data" -type f -printf '%f %s\n' | sort >"$W/packs.before"
	/usr/bin/time -f "%e %U %S" -o "$W/time" "$M" prune --repo "$W/repo" --no-progress --json ${PRUNE_ARGS:-} >"$W/prune.json"
	find "$W/repo/data" -type f -printf '%f %s\n' | sort >"$W/packs.after"
	read -r wall usr sys <"$W/time"
	wrote=$(comm -13 "$W/packs.before" "$W/packs.after" | awk '{s += $2} END {print s + 0}')
	removed=$(comm -23 "$W/packs.before" "$W/packs.after" | awk '{s += $2} END {print s + 0}')
	echo "cycle $c: $(du -sb "$W/repo" | cut -f1) prune: wrote $wrote removed $removed $(jq -r '"packs_repacked \(.packs_repacked) packs_deleted \(.packs_deleted) groups_regrouped \(.groups_regrouped) bytes_regrouped \(.bytes_regrouped)"' "$W/prune.json") wall $wall cpu $(echo "$usr + $sys" | bc)"
done
"$M" init --repo "$W/fresh" -q
MEMENTO_CACHE_DIR=$W/cache2 "$M" backup --repo "$W/fresh" --no-progress -q "$W/tree"
echo "fresh backup of the last state: $(du -sb "$W/fresh" | cut -f1)"
rm -rf "$W/tree"
