#!/usr/bin/env bash
# Verify backups at a level (L1 manifest .. L4 restore + replay + digest), or
# run whatever the verification policy says is due.
set -euo pipefail
# shellcheck source=scripts/ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: verify_backup.sh [--level L1|L2|L3|L4] [--space ID | --snapshot ID | --every] [--subset 10%] [--schedule] [--dry-run] [-h]

Verifies the newest snapshot of every space (default), of one space (--space),
one snapshot (--snapshot), or every snapshot (--every), at --level (default
$VERIFY_LEVEL or L2): L1 manifest, L2 every byte read and checked, L3 L2 plus
the Engram structure, L4 restore into a temporary directory, replay the WAL
and compare the state digest recorded at backup. Each verdict goes to the
audit trail (memento log --command verify). --schedule instead runs what the
verification policy says is due (for a timer every few minutes).

Runs: memento verify --all --latest --level L2

Environment:
  MEMENTO_REPOSITORY     repository location (required)
  MEMENTO_PASSWORD_FILE  file holding the repository password
  VERIFY_LEVEL           default --level (L2)
  MEMENTO_BIN            memento binary (default: memento on PATH)
  DRY_RUN=1              print the command instead of running it (= --dry-run)

Exit code: memento's (0 everything passed, 5 something failed, 7 not found).
USAGE
}

level=${VERIFY_LEVEL:-L2} sel=(--all --latest) subset=() schedule=0
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--dry-run) DRY_RUN=1 ;;
    --level) [ $# -ge 2 ] || die "--level needs a value"; level=$2; shift ;;
    --space) [ $# -ge 2 ] || die "--space needs a value"; sel=(--space "$2" --latest); shift ;;
    --snapshot) [ $# -ge 2 ] || die "--snapshot needs a value"; sel=("$2"); shift ;;
    --every) sel=(--all) ;;
    --subset) [ $# -ge 2 ] || die "--subset needs a value"; subset=(--subset "$2"); shift ;;
    --schedule) schedule=1 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
require_env MEMENTO_REPOSITORY
case $level in
  L1|L2|L3|L4) ;;
  *) die "--level must be L1, L2, L3 or L4, not '$level'" ;;
esac

if [ "$schedule" = 1 ]; then
  run verify --schedule
else
  run verify "${sel[@]}" --level "$level" ${subset[@]+"${subset[@]}"}
fi
