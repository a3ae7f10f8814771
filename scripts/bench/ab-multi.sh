#!/bin/bash
# Interleaved first backups of one data dir by several memento binaries
# (issue 18, session 23: the bisection of def's first backup): per round,
# every binary in an order rotated by the round, each into a fresh
# repository and cache, the page cache dropped before each run. Prints one
# line per run: round, name, wall s, CPU s (user + system), user s, system
# s, max RSS KiB, 1-minute load.
#
#   BINS="main=/tmp/memento-main new=bin/memento" DATA=/work/wt/data/def \
#   ROUNDS=6 W=/tmp/abm MEMENTO_PASSWORD=benchpw scripts/bench/ab-multi.sh
#
# DATA is an Engram data dir (backup --data-dir DATA --all).
set -u
: "${BINS:?} ${DATA:?} ${W:?} ${MEMENTO_PASSWORD:?}"
ROUNDS=${ROUNDS:-3}
read -ra pairs <<<"$BINS"
mkdir -p "$W"
for ((round = 0; round < ROUNDS; round++)); do
  for ((k = 0; k < ${#pairs[@]}; k++)); do
    p=${pairs[(k + round) % ${#pairs[@]}]}
    tool=${p%%=*} b=${p#*=}
    r=$W/repo-$tool
    rm -rf "$r" "$W/cache-$tool"
    export MEMENTO_CACHE_DIR=$W/cache-$tool
    "$b" init --repo "$r" >/dev/null
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f '%e %U %S %M' -o "$W/time" "$b" backup --repo "$r" --data-dir "$DATA" --all --no-progress \
      >/dev/null 2>"$W/err" || echo "FAILED: $tool: $(tail -n 2 "$W/err")" >&2
    read -r wall u s rss <"$W/time"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$tool" "$wall" \
      "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$u" "$s" "$rss" "$load"
  done
done
