#!/usr/bin/env bash
# Compact the WAL of every space that has more sealed segments than
# WAL_COMPACT_THRESHOLD (only segments already archived in the repository).
set -euo pipefail
# shellcheck source=scripts/ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: wal_compact.sh [--space ID]... [--threshold N] [--grace 168h] [--dry-run] [-h]

For every space of the data dir (or each --space) whose WAL has more than
N sealed segments (N = --threshold, default $WAL_COMPACT_THRESHOLD or 100;
every wal-*.log but the newest is sealed), rewrites the sealed segments
already archived in the repository into one compacted segment (memento wal
compact). The originals stay hard-linked under wal/.archive-<time>/ for
--grace and in the repository, so point-in-time recovery still works.
Run 'memento wal archive' (or 'wal watch') first: unarchived segments are
never compacted by this script.

Runs, per space above the threshold:
      memento wal compact --data-dir $ENGRAM_DATA_DIR --space ID --grace 168h

Environment:
  ENGRAM_DATA_DIR        Engram data directory (required)
  MEMENTO_REPOSITORY     repository location (required)
  MEMENTO_PASSWORD_FILE  file holding the repository password
  WAL_COMPACT_THRESHOLD  sealed segments a space may have before it is compacted (default 100)
  MEMENTO_BIN            memento binary (default: memento on PATH)
  DRY_RUN=1              print the commands instead of running them (= --dry-run)

Exit code: memento's (the first space whose compaction fails stops the run).
USAGE
}

spaces=() threshold=${WAL_COMPACT_THRESHOLD:-100} grace=168h
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--dry-run) DRY_RUN=1 ;;
    --space) [ $# -ge 2 ] || die "--space needs a value"; spaces+=("$2"); shift ;;
    --threshold) [ $# -ge 2 ] || die "--threshold needs a value"; threshold=$2; shift ;;
    --grace) [ $# -ge 2 ] || die "--grace needs a value"; grace=$2; shift ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
require_env ENGRAM_DATA_DIR MEMENTO_REPOSITORY
require_uint threshold
[ -d "$ENGRAM_DATA_DIR/spaces" ] || die "$ENGRAM_DATA_DIR/spaces: no such directory (is ENGRAM_DATA_DIR an Engram data dir?)"

if [ ${#spaces[@]} -eq 0 ]; then
  for d in "$ENGRAM_DATA_DIR"/spaces/*/; do
    [ -d "$d" ] || continue
    d=${d%/}
    spaces+=("${d##*/}")
  done
fi

compacted=0
for space in ${spaces[@]+"${spaces[@]}"}; do
  wal=$ENGRAM_DATA_DIR/spaces/$space/wal
  [ -d "$wal" ] || die "space $space has no WAL directory ($wal)"
  segments=("$wal"/wal-*.log)
  [ -e "${segments[0]}" ] || segments=()
  sealed=$(( ${#segments[@]} > 0 ? ${#segments[@]} - 1 : 0 ))
  if [ "$sealed" -le "$threshold" ]; then
    echo "$space: $sealed sealed segment(s), threshold $threshold: nothing to do"
    continue
  fi
  echo "$space: $sealed sealed segment(s), threshold $threshold: compacting"
  run wal compact --data-dir "$ENGRAM_DATA_DIR" --space "$space" --grace "$grace"
  compacted=$((compacted + 1))
done
if dry_run; then
  echo "would compact $compacted space(s)"
else
  echo "compacted $compacted space(s)"
fi
