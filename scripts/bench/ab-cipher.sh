#!/bin/bash
# Interleaved A/B of two memento binaries on one Engram data dir: a new
# repository per binary per round (each binary's default cipher), then the
# first backup, a full restore and an L2 verify of every space's latest
# snapshot, the page cache dropped before every command. Prints one line
# per command: round, command, tool, wall s, CPU s (user + sys), user s,
# sys s, max RSS KiB, 1-minute load. With PROFILE=1 each command also
# writes a CPU profile $W/p-TOOL-CMD-ROUND.prof (MEMENTO_CPUPROFILE). See
# docs/benchmarks.md, "data cipher XAES-256-GCM".
#
#   OLD=/work/wt/profiles/memento-main NEW=bin/memento D=/tmp/wh W=/tmp/abc \
#   scripts/bench/ab-cipher.sh >cipher.tsv
set -u
: "${OLD:?} ${NEW:?} ${D:?} ${W:?}"
ROUNDS=${ROUNDS:-3}
export MEMENTO_PASSWORD=${MEMENTO_PASSWORD:-bench}
mkdir -p "$W"
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
run() { # LABEL TOOL CMD...
  local label=$1 tool=$2 l wall u s m
  shift 2
  drop
  l=$(cut -d' ' -f1 /proc/loadavg)
  if [ "${PROFILE:-0}" = 1 ]; then export MEMENTO_CPUPROFILE=$W/p-$tool-$label-$round.prof; fi
  /usr/bin/time -f '%e %U %S %M' -o "$W/time" "$@" >/dev/null 2>"$W/err" || echo "FAILED: $label $tool: $(tail -n 2 "$W/err")" >&2
  unset MEMENTO_CPUPROFILE
  read -r wall u s m <"$W/time"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "$tool" "$wall" \
    "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$u" "$s" "$m" "$l"
}
tools=(old new)
for ((round = 1; round <= ROUNDS; round++)); do
  for k in 0 1; do
    tool=${tools[(k + round) % 2]}
    bin=$OLD
    [ "$tool" = new ] && bin=$NEW
    r=$W/repo-$tool
    rm -rf "$r" "$W/cache-$tool" "$W/rt"
    export MEMENTO_CACHE_DIR=$W/cache-$tool
    "$bin" init --repo "$r" >/dev/null
    run backup "$tool" "$bin" backup --repo "$r" --data-dir "$D" --all --no-progress
    mkdir -p "$W/rt"
    run restore "$tool" "$bin" restore --repo "$r" --all --latest --target "$W/rt" --no-progress
    rm -rf "$W/rt"
    run verifyL2 "$tool" "$bin" verify --repo "$r" --all --latest --level L2 --no-progress
  done
done
