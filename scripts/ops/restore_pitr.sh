#!/usr/bin/env bash
# Point-in-time recovery: restore a space (or every space) as it was at an
# instant, or through a WAL sequence number, from snapshots plus archived WAL.
set -euo pipefail
# shellcheck source=scripts/ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: restore_pitr.sh (--space ID | --all) (--at TIME | --to-seq N) [--target DIR] [--ranges] [--dry-run] [-h]

Recovers a space (--space ID) or every space (--all) as it was at TIME (RFC
3339 with up to 9 fractional digits, or Unix nanoseconds: entries with
timestamp <= TIME), or through WAL sequence N (--to-seq, --space only), into
--target (default $ENGRAM_DATA_DIR; only spaces/<id> is replaced, the old
content is kept as a .pre-restore-<time> copy). Stop Engram first.
--ranges first prints what can be recovered (memento pitr ranges; --space only).

Runs: memento restore --space ID --at TIME --target DIR

Environment:
  ENGRAM_DATA_DIR        default --target
  MEMENTO_REPOSITORY     repository location (required)
  MEMENTO_PASSWORD_FILE  file holding the repository password
  MEMENTO_BIN            memento binary (default: memento on PATH)
  DRY_RUN=1              print the commands instead of running them (= --dry-run)

Exit code: memento's (8: TIME is outside every recoverable range, 7: no such space, ...).
USAGE
}

space='' all=0 at='' to_seq='' ranges=0 target=${ENGRAM_DATA_DIR:-}
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--dry-run) DRY_RUN=1 ;;
    --space) [ $# -ge 2 ] || die "--space needs a value"; space=$2; shift ;;
    --all) all=1 ;;
    --at) [ $# -ge 2 ] || die "--at needs a value"; at=$2; shift ;;
    --to-seq) [ $# -ge 2 ] || die "--to-seq needs a value"; to_seq=$2; shift ;;
    --target) [ $# -ge 2 ] || die "--target needs a value"; target=$2; shift ;;
    --ranges) ranges=1 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
require_env MEMENTO_REPOSITORY
[ -n "$target" ] || die "--target is required when ENGRAM_DATA_DIR is not set"
if [ -n "$space" ] && [ "$all" = 1 ]; then die "give --space or --all, not both"; fi
if [ -z "$space" ] && [ "$all" = 0 ]; then die "give --space ID or --all"; fi
if [ -n "$at" ] && [ -n "$to_seq" ]; then die "give --at or --to-seq, not both"; fi
if [ -z "$at" ] && [ -z "$to_seq" ]; then die "give --at TIME or --to-seq N"; fi
if [ -n "$to_seq" ] && [ "$all" = 1 ]; then die "--to-seq needs --space (sequence numbers are per space)"; fi
if [ "$ranges" = 1 ] && [ "$all" = 1 ]; then die "--ranges needs --space"; fi

if [ -n "$space" ]; then
  sel=(--space "$space")
else
  sel=(--all)
fi
if [ -n "$at" ]; then
  point=(--at "$at")
else
  point=(--to-seq "$to_seq")
fi
if [ "$ranges" = 1 ]; then
  run pitr ranges --space "$space"
fi
run restore "${sel[@]}" "${point[@]}" --target "$target"
