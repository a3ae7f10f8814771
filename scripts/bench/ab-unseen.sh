#!/bin/bash
# Interleaved survey of plain-path backups on kinds of data the other
# benchmarks do not cover (scripts/bench/unseen-data.sh writes them): per
# round, data set and tool (memento binaries OLD and NEW, restic 0.14; the
# order rotated per round), a first backup into a fresh repository, an
# unchanged second backup (each tool finds its parent itself) and a restore
# of the latest snapshot into a fresh target, the page cache dropped before
# each. Prints one line per run in ab-first.sh's columns, the data column
# being NAME:OP (OP first, unchanged or restore): round, NAME:OP, tool, wall
# s, CPU s, user s, sys s, 1-minute load, repository bytes (du -sb, after
# the backups), peak RSS KiB. After the first round's restores it checks,
# outside the timing, what was restored against the source (on stderr):
#   MISMATCH ... content   the sha256 of a regular file differs or is missing
#   MISMATCH ... entries   the list of entries (type, path, size, symlink target) differs
#   MISMATCH ... links     the hard link groups (names sharing an inode) differ
# and prints "CHECK NAME TOOL: allocated KiB (source S)", the restored
# tree's du -sk, which says whether holes were kept.
#
#   NEW=bin/memento W=/tmp/ab-unseen ROUNDS=3 TOOLS="new restic" \
#   DATA="sparse=/work/wt/data/u-sparse tiny=/work/wt/data/u-tiny" \
#   MEMENTO_PASSWORD=benchpw RESTIC_PASSWORD=benchpw scripts/bench/ab-unseen.sh
set -u
: "${NEW:?} ${DATA:?} ${W:?} ${MEMENTO_PASSWORD:?} ${RESTIC_PASSWORD:?}"
OLD=${OLD:-$NEW}
ROUNDS=${ROUNDS:-3}
read -ra tools <<<"${TOOLS:-new restic}"
mkdir -p "$W"
op=
W=$(cd "$W" && pwd)
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum); }
entries() { (cd "$1" && find . -printf '%y %p %s %l\n' | awk '{ if ($1 == "d") $3 = "-"; print }' | sort); }
links() { (cd "$1" && find . -type f -links +1 -printf '%i %p\n' | sort -k2 | awk '{ g[$1] = g[$1] " " $2 } END { for (i in g) print g[i] }' | sort); }
# run TOOL-COMMAND...: one timed run after sync and a dropped page cache; sets wall u s rss load.
run() {
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%e %U %S %M' -o "$W/time" "$@" >/dev/null 2>"$W/err" || echo "FAILED: $tool $name $op: $(tail -n 2 "$W/err")" >&2
  read -r wall u s rss <"$W/time"
}
emit() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $((round + 1)) "$name:$op" "$tool" "$wall" \
    "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$u" "$s" "$load" "$repo" "$rss"
}
for pair in $DATA; do
  name=${pair%%=*} dir=${pair#*=}
  sums "$dir" >"$W/want-$name.sha"
  entries "$dir" >"$W/want-$name.entries"
  links "$dir" >"$W/want-$name.links"
done
for ((round = 0; round < ROUNDS; round++)); do
  for pair in $DATA; do
    name=${pair%%=*} dir=${pair#*=}
    for ((k = 0; k < ${#tools[@]}; k++)); do
      tool=${tools[(k + round) % ${#tools[@]}]}
      r=$W/repo t=$W/target
      rm -rf "$r" "$W/cache" "$t"
      export MEMENTO_CACHE_DIR=$W/cache RESTIC_CACHE_DIR=$W/cache
      case $tool in
        restic)
          restic -r "$r" init --repository-version 2 >/dev/null 2>&1
          back=(restic -r "$r" backup --compression auto -q "$dir")
          rest=(restic -r "$r" restore latest --target "$t" -q) ;;
        *)
          bin=$OLD
          [ "$tool" = new ] && bin=$NEW
          "$bin" init --repo "$r" >/dev/null
          back=("$bin" backup --repo "$r" --no-progress "$dir")
          rest=("$bin" restore --repo "$r" latest --target "$t" --no-progress) ;;
      esac
      for op in first unchanged; do
        run "${back[@]}"
        repo=$(du -sb "$r" | cut -f1)
        emit
      done
      op=restore
      run "${rest[@]}"
      emit
      if ((round == 0)); then
        got=$t/${dir#/}
        sums "$got" | cmp -s - "$W/want-$name.sha" || echo "MISMATCH: $name $tool content" >&2
        entries "$got" | cmp -s - "$W/want-$name.entries" || echo "MISMATCH: $name $tool entries" >&2
        links "$got" | cmp -s - "$W/want-$name.links" || echo "MISMATCH: $name $tool links" >&2
        echo "CHECK $name $tool: allocated $(du -sk "$got" | cut -f1) KiB (source $(du -sk "$dir" | cut -f1))" >&2
      fi
      rm -rf "$t"
    done
  done
done
