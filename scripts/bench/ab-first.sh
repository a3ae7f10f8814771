#!/bin/bash
# Interleaved A/B of the first backup: two memento binaries and restic 0.14,
# each into a fresh repository, the page cache dropped before every run,
# ROUNDS rounds, the tool order rotated per round. Prints one line per run:
# round, data, tool, wall s, CPU s (user + system), user s, system s,
# 1-minute load, repository bytes (du -sb; memento's includes its 4 MiB
# full-disk reserve file), peak RSS KiB. See docs/benchmarks.md, "Issue 18, session 7".
#
#   OLD=/tmp/memento-main NEW=bin/memento W=/tmp/abfirst \
#   DATA="walheavy=/tmp/wh default=/tmp/dd gosrc=/tmp/gosrc" \
#   scripts/bench/ab-first.sh >first.tsv
#
# DATA lists NAME=DIR pairs; a DIR holding spaces/ is backed up as a data
# dir (--data-dir DIR --all), any other as a plain path. TOOLS picks the
# tools (default "old new restic"); an entry NAME=BINARY adds any memento
# binary under its own name, e.g. TOOLS="main=/tmp/m0 rev23=/tmp/m1 new=bin/memento"
# (OLD and NEW are then needed only if "old" or "new" is listed).
# MEMENTO_PASSWORD and RESTIC_PASSWORD
# must be set; W holds the repositories and caches and is emptied per run.
# WRAP, if set, prefixes every timed command: WRAP="chrt -f 20" runs it
# ahead of a loaded machine's other work (docs/benchmarks.md, "Issue 18,
# session 16"). UNCHANGED=1 times, after each first backup, a second one of
# the same data into the same repository (nothing changed: each tool finds
# its parent itself), the page cache dropped before it too, printed as a
# line of its own whose data column is NAME:unchanged (docs/benchmarks.md,
# "Issue 18, session 24: the unchanged re-backup of 16 spaces").
# SETTLE (default 5) is how many seconds each run waits after its sync, as
# in ab-day.sh: the previous run's writes (a repository written, one
# removed) still reach the VM's disk after sync returns (docs/benchmarks.md,
# "Issue 18, session 26" and "session 27: the merge").
set -u
: "${DATA:?} ${W:?}"
ROUNDS=${ROUNDS:-3}
read -ra tools <<<"${TOOLS:-old new restic}"
mkdir -p "$W"
# timed: one run of cmd after sync and a dropped page cache, printed as a
# line for data $label.
timed() {
  sync
  sleep "${SETTLE:-5}"
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  load=$(cut -d' ' -f1 /proc/loadavg)
  read -ra wrap <<<"${WRAP:-}"
  /usr/bin/time -f '%e %U %S %M' -o "$W/time" "${wrap[@]}" "${cmd[@]}" >/dev/null 2>"$W/err" || echo "FAILED: $tool $label: $(tail -n 2 "$W/err")" >&2
  read -r wall u s rss <"$W/time"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $((round + 1)) "$label" "$tool" "$wall" \
    "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$u" "$s" "$load" "$(du -sb "$r" | cut -f1)" "$rss"
}
for ((round = 0; round < ROUNDS; round++)); do
  for pair in $DATA; do
    name=${pair%%=*} dir=${pair#*=}
    for ((k = 0; k < ${#tools[@]}; k++)); do
      tool=${tools[(k + round) % ${#tools[@]}]} bin=
      case $tool in
        old) bin=${OLD:?OLD is needed for the tool old} ;;
        new) bin=${NEW:?NEW is needed for the tool new} ;;
        *=*) bin=${tool#*=} tool=${tool%%=*} ;;
      esac
      r=$W/repo-$tool
      rm -rf "$r" "$W/cache-$tool"
      export MEMENTO_CACHE_DIR=$W/cache-$tool RESTIC_CACHE_DIR=$W/cache-$tool
      case $tool in
        restic)
          restic -r "$r" init --repository-version 2 >/dev/null 2>&1
          cmd=(restic -r "$r" backup --compression auto -q "$dir") ;;
        *)
          "$bin" init --repo "$r" >/dev/null
          if [ -d "$dir/spaces" ]; then
            cmd=("$bin" backup --repo "$r" --data-dir "$dir" --all --no-progress)
          else
            cmd=("$bin" backup --repo "$r" --no-progress "$dir")
          fi ;;
      esac
      label=$name
      timed
      if [ "${UNCHANGED:-0}" = 1 ]; then
        label=$name:unchanged
        timed
      fi
    done
  done
done
