# shellcheck shell=bash
# Helpers for scripts/bench.sh: one timing method for every tool.
#
# Every timed run goes through measure(), so memento, restic, borg and the
# tar|zstd pipeline are measured the same way: the same cache preparation,
# the same clock, `sync` inside the timed region (a backup or restore is done
# when its bytes are durable, whatever each tool fsyncs on its own), and
# /usr/bin/time -v for the peak RSS of the largest process of the run.

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# q quotes its arguments for a bash -c command line.
q() { printf '%q ' "$@"; }

# now prints the wall clock in seconds with nanoseconds.
now() { date +%s.%N; }

# sum_sizes DIR... prints the total size in bytes of the regular files below DIRs.
sum_sizes() { find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {printf "%.0f\n", s}'; }

# dir_bytes DIR prints du -sb of DIR (what the repository occupies on disk).
dir_bytes() { du -sb "$1" 2>/dev/null | awk '{print $1}'; }

# prepare_cache INPUT... puts the page cache in the same state before every
# timed run: "drop" empties it (sync; drop_caches), "warm" reads INPUT once
# so that the run starts with its input cached, like the other tools did.
prepare_cache() {
  sync
  case "$BENCH_CACHE" in
    drop) echo 3 >/proc/sys/vm/drop_caches ;;
    warm) [ $# -gt 0 ] && find "$@" -type f -exec cat {} + >/dev/null 2>&1 ;;
  esac
  return 0
}

# record ROUND TOOL OP STATUS WALL RSS_KB BYTES REPO ADDED EXTRA NOTE [CPU]
# appends one row to the raw results (tab separated; "-" for not applicable).
# CPU is user+system seconds of the whole run (all processes, all cores).
record() {
  local IFS=$'\t'
  printf '%s\n' "$*" >>"$RESULTS"
}

# skip_row TOOL OP NOTE records that an operation could not be measured.
skip_row() {
  local tool=$1 op=$2 note=$3
  if ! grep -q "^[0-9]*	$tool	$op	skip	" "$RESULTS" 2>/dev/null; then
    record 0 "$tool" "$op" skip - - - - - - "$note" -
  fi
  log "skip $tool $op: $note"
}

# Set by measure for its caller.
M_WALL=0 M_RSS=0 M_CPU=0 M_RC=0 M_LOG=

# measure ROUND TOOL OP BYTES CMD [INPUT...] runs CMD (a bash -c string)
# once, timed, after prepare_cache INPUT..., and records the row (without
# repository figures; callers add those with record_repo). Returns CMD's status.
measure() {
  local round=$1 tool=$2 op=$3 bytes=$4 cmd=$5
  shift 5
  M_LOG="$LOGS/r$round-$tool-$op.log"
  local tf="$LOGS/r$round-$tool-$op.time"
  prepare_cache "$@"
  local t0 t1
  t0=$(now)
  /usr/bin/time -v -o "$tf" timeout -k 10 "$BENCH_TIMEOUT" \
    bash -c "$cmd"'; rc=$?; sync; exit $rc' >"$M_LOG" 2>&1
  M_RC=$?
  t1=$(now)
  M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b-a}')
  M_RSS=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf" 2>/dev/null)
  M_RSS=${M_RSS:-0}
  M_CPU=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ {s += $2} END {printf "%.2f", s}' "$tf" 2>/dev/null)
  if [ "$M_RC" -eq 0 ]; then
    log "  $tool $op: ${M_WALL}s wall, ${M_CPU}s CPU, peak RSS $((M_RSS / 1024)) MiB"
  else
    log "  $tool $op: FAILED (exit $M_RC) after ${M_WALL}s; last lines of $M_LOG:"
    tail -n 5 "$M_LOG" | sed 's/^/      /' >&2
  fi
  return "$M_RC"
}

# missing_feature LOG says whether a failed memento run failed only because
# this build lacks the feature (so the row is skipped, not failed).
missing_feature() {
  grep -qiE 'not available in this build|unknown command|unknown flag|unknown shorthand flag|not supported by this build' "$1"
}

# finish_row ROUND TOOL OP BYTES [REPO [ADDED [EXTRA [NOTE]]]] records the
# result of the last measure(). A failure caused by a missing memento
# feature becomes a skip; any other failure counts against the exit status.
finish_row() {
  local round=$1 tool=$2 op=$3 bytes=$4 repo=${5:--} added=${6:--} extra=${7:--} note=${8:--}
  if [ "$M_RC" -eq 0 ]; then
    record "$round" "$tool" "$op" ok "$M_WALL" "$M_RSS" "$bytes" "$repo" "$added" "$extra" "$note" "$M_CPU"
  elif [ "$tool" = memento ] && missing_feature "$M_LOG"; then
    skip_row "$tool" "$op" "not in this build: $(grep -m1 -iE 'not available|unknown|not supported' "$M_LOG" | cut -c1-120)"
  else
    record "$round" "$tool" "$op" fail "$M_WALL" "$M_RSS" "$bytes" "$repo" "$added" "$extra" "exit $M_RC, see $M_LOG" "$M_CPU"
    FAILED=$((FAILED + 1))
  fi
}

# has_cmd WORDS... says whether memento has the (sub)command "memento WORDS".
has_cmd() {
  "$MEMENTO" help "$@" 2>&1 | grep -q "^  memento $*"
}

# has_flag FLAG WORDS... says whether "memento WORDS" documents --FLAG.
has_flag() {
  local flag=$1
  shift
  "$MEMENTO" help "$@" 2>&1 | grep -q -- "--$flag\b"
}

# mount_wait DIR PROBE SECONDS waits until DIR/PROBE exists (a FUSE mount is up).
mount_wait() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ -e "$1/$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# unmount DIR PID unmounts a FUSE mount and waits for its server to exit.
unmount() {
  local dir=$1 pid=$2 i
  fusermount3 -u "$dir" 2>/dev/null || fusermount -u "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}
