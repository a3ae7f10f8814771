#!/usr/bin/env bash
# Restore a space (or every space) from its latest snapshot, or one snapshot
# by ID, into an Engram data dir. memento never overwrites: the previous
# content is moved to TARGET.pre-restore-<time>.
set -euo pipefail
# shellcheck source=scripts/ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: restore.sh (--space ID | --all | --snapshot ID) [--target DIR] [--dry-run] [-h]

Restores the newest snapshot of a space (--space ID), of every space (--all),
or the snapshot --snapshot ID, into --target (default $ENGRAM_DATA_DIR; for a
space snapshot the target is the data dir and only spaces/<id> is replaced).
Every byte is verified while writing; the previous content of the target is
kept as TARGET.pre-restore-<time>. Stop Engram first.

Runs: memento restore --space ID --latest --target DIR
      memento restore --all --latest --target DIR
      memento restore SNAPSHOT --target DIR

Environment:
  ENGRAM_DATA_DIR        default --target
  MEMENTO_REPOSITORY     repository location (required)
  MEMENTO_PASSWORD_FILE  file holding the repository password
  MEMENTO_BIN            memento binary (default: memento on PATH)
  DRY_RUN=1              print the command instead of running it (= --dry-run)

Exit code: memento's (7: no such space or snapshot, 5: corrupt data, ...).
USAGE
}

space='' all=0 snapshot='' target=${ENGRAM_DATA_DIR:-}
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--dry-run) DRY_RUN=1 ;;
    --space) [ $# -ge 2 ] || die "--space needs a value"; space=$2; shift ;;
    --all) all=1 ;;
    --snapshot) [ $# -ge 2 ] || die "--snapshot needs a value"; snapshot=$2; shift ;;
    --target) [ $# -ge 2 ] || die "--target needs a value"; target=$2; shift ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
require_env MEMENTO_REPOSITORY
[ -n "$target" ] || die "--target is required when ENGRAM_DATA_DIR is not set"
n=0
[ -z "$space" ] || n=$((n + 1))
[ "$all" = 0 ] || n=$((n + 1))
[ -z "$snapshot" ] || n=$((n + 1))
[ "$n" = 1 ] || die "give exactly one of --space, --all, --snapshot"

if [ -n "$snapshot" ]; then
  run restore "$snapshot" --target "$target"
elif [ "$all" = 1 ]; then
  run restore --all --latest --target "$target"
else
  run restore --space "$space" --latest --target "$target"
fi
