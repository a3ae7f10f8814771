#!/usr/bin/env bash
# Incremental backup: ship the WAL written since the last run, then take one
# snapshot per space that reads only the files changed since its parent.
set -euo pipefail
# shellcheck source=scripts/ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: backup_incremental.sh [--space ID]... [--tag TAG]... [--wal-only] [--dry-run] [-h]

Archives every WAL byte the repository lacks (memento wal archive), then
backs up every space (or each --space) as one snapshot per space, reading
only the files whose size, mtime, ctime or inode changed since the space's
latest snapshot, tagged "incremental" (and each --tag). With --wal-only it
only archives the WAL (for a cron-driven RPO where 'wal watch' is not run).

Runs: memento wal archive --data-dir $ENGRAM_DATA_DIR --all
      memento backup --data-dir $ENGRAM_DATA_DIR --all --tag incremental

Environment:
  ENGRAM_DATA_DIR        Engram data directory (required)
  MEMENTO_REPOSITORY     repository location (required)
  MEMENTO_PASSWORD_FILE  file holding the repository password
  MEMENTO_BIN            memento binary (default: memento on PATH)
  DRY_RUN=1              print the commands instead of running them (= --dry-run)

Exit code: memento's; the backup is not attempted when the WAL archive fails.
USAGE
}

spaces=() tags=() wal_only=0
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--dry-run) DRY_RUN=1 ;;
    --space) [ $# -ge 2 ] || die "--space needs a value"; spaces+=(--space "$2"); shift ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tags+=(--tag "$2"); shift ;;
    --wal-only) wal_only=1 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
require_env ENGRAM_DATA_DIR MEMENTO_REPOSITORY

if [ ${#spaces[@]} -eq 0 ]; then
  spaces=(--all)
fi
run wal archive --data-dir "$ENGRAM_DATA_DIR" "${spaces[@]}"
if [ "$wal_only" = 1 ]; then
  exit 0
fi
run backup --data-dir "$ENGRAM_DATA_DIR" "${spaces[@]}" --tag incremental ${tags[@]+"${tags[@]}"}
