#!/bin/bash
# Interleaved A/B of two memento binaries on Engram data dirs: per round and
# data dir, each binary (order alternating) makes a fresh repository, backs
# the data dir up (--data-dir DIR --all, empty cache), restores it all
# (sha256 of every file under spaces/ compared with the source) and runs an
# L2 verify; the page cache is dropped before each timed command. Prints one
# line per command: round, data, tool, phase, wall s, CPU s (user + system),
# user s, system s, 1-minute load, peak RSS KiB, then the repository bytes
# (du -sb minus the 4 MiB .tmp-reserve) for backup, sha-equal/SHA-DIFF for
# restore, the verify's output line count for verifyL2. See
# docs/benchmarks.md, "Issue 18, session 11: a WAL form".
#
#   OLD=/work/wt/profiles/memento-main11 NEW=bin/memento W=/tmp/abwal ROUNDS=3 \
#   DATA="def=/work/wt/data/def wh=/work/wt/data/wh" scripts/bench/ab-walrec.sh >ab.tsv
#
# MEMENTO_PASSWORD must be set; W holds the repository, cache and restore
# target and is emptied per run.
set -u
: "${OLD:?} ${NEW:?} ${DATA:?} ${W:?}"
ROUNDS=${ROUNDS:-3}
tools=(old new)
mkdir -p "$W"
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
run() { # phase cmd...
  local phase=$1; shift
  drop
  local load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%e %U %S %M' -o "$W/time" "$@" >"$W/out" 2>"$W/err" || echo "FAILED: $tool $name $phase: $(tail -n 3 "$W/err")" >&2
  read -r wall u s rss <"$W/time"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' $((round + 1)) "$name" "$tool" "$phase" "$wall" \
    "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$u" "$s" "$load" "$rss"
}
for ((round = 0; round < ROUNDS; round++)); do
  for pair in $DATA; do
    name=${pair%%=*} dir=${pair#*=}
    for ((k = 0; k < 2; k++)); do
      tool=${tools[(k + round) % 2]}
      bin=$OLD; [ "$tool" = new ] && bin=$NEW
      r=$W/repo; c=$W/cache; t=$W/target
      rm -rf "$r" "$c" "$t"
      export MEMENTO_CACHE_DIR=$c
      "$bin" init --repo "$r" >/dev/null
      run backup "$bin" backup --repo "$r" --data-dir "$dir" --all --no-progress
      size=$(( $(du -sb "$r" | cut -f1) - $(stat -c %s "$r/.tmp-reserve" 2>/dev/null || echo 0) ))
      printf '\t%s\n' "$size"
      mkdir -p "$t"
      run restore "$bin" restore --repo "$r" --all --latest --target "$t"
      if (cd "$dir/spaces" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | cmp -s - <(cd "$t/spaces" && find . -type f -print0 | sort -z | xargs -0 sha256sum); then eq=sha-equal; else eq=SHA-DIFF; fi
      printf '\t%s\n' "$eq"
      rm -rf "$t"
      run verifyL2 "$bin" verify --repo "$r" --all --latest --level L2
      printf '\t%s\n' "$(grep -c . "$W/out")lines"
    done
  done
done
