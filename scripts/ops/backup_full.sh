#!/usr/bin/env bash
# Full backup of every Engram space: one snapshot per space, every file read
# again (memento backup --force), tagged "full".
set -euo pipefail
# shellcheck source=scripts/ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: backup_full.sh [--space ID]... [--tag TAG]... [--dry-run] [-h]

Takes a full backup of the Engram data dir: one snapshot per space (every
space, or each --space), reading every file again instead of trusting the
parent snapshot (memento backup --force), tagged "full" (and each --tag).
Unchanged data is still stored only once: a full backup costs read time,
not repository space.

Runs: memento backup --data-dir $ENGRAM_DATA_DIR --all --force --tag full

Environment:
  ENGRAM_DATA_DIR        Engram data directory (required)
  MEMENTO_REPOSITORY     repository location (required)
  MEMENTO_PASSWORD_FILE  file holding the repository password
  MEMENTO_BIN            memento binary (default: memento on PATH)
  DRY_RUN=1              print the command instead of running it (= --dry-run)

Exit code: memento's (0 ok, 5 a space's data is damaged, 6 locked, ...).
USAGE
}

spaces=() tags=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--dry-run) DRY_RUN=1 ;;
    --space) [ $# -ge 2 ] || die "--space needs a value"; spaces+=(--space "$2"); shift ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tags+=(--tag "$2"); shift ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
require_env ENGRAM_DATA_DIR MEMENTO_REPOSITORY

if [ ${#spaces[@]} -eq 0 ]; then
  spaces=(--all)
fi
run backup --data-dir "$ENGRAM_DATA_DIR" "${spaces[@]}" --force --tag full ${tags[@]+"${tags[@]}"}
