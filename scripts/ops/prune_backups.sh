#!/usr/bin/env bash
# Apply the retention policy (keep daily, weekly, monthly snapshots of every
# space), then delete the data no remaining snapshot or needed WAL uses.
set -euo pipefail
# shellcheck source=scripts/ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: prune_backups.sh [--max-unused 10%] [--no-prune] [--dry-run] [-h]

Forgets the snapshots the retention policy does not keep, per space (the
newest snapshot of each of the last BACKUP_RETENTION_DAILY days,
BACKUP_RETENTION_WEEKLY ISO weeks and BACKUP_RETENTION_MONTHLY months; a
space never loses its last snapshot), then prunes: deletes the packs no
remaining snapshot uses and keeps the archived WAL that point-in-time
recovery from the remaining snapshots needs. --no-prune only forgets.
prune takes the repository's exclusive lock: it fails with exit code 6
while a backup, restore or 'wal watch' runs; schedule it apart from them.

Runs: memento forget --all --keep-daily 7 --keep-weekly 4 --keep-monthly 12
      memento prune --max-unused 10%

Environment:
  MEMENTO_REPOSITORY        repository location (required)
  MEMENTO_PASSWORD_FILE     file holding the repository password
  BACKUP_RETENTION_DAILY    daily snapshots to keep (default 7)
  BACKUP_RETENTION_WEEKLY   weekly snapshots to keep (default 4)
  BACKUP_RETENTION_MONTHLY  monthly snapshots to keep (default 12)
  MEMENTO_BIN               memento binary (default: memento on PATH)
  DRY_RUN=1                 print the commands instead of running them (= --dry-run)

Exit code: memento's; prune is not run when forget fails.
USAGE
}

max_unused=10% do_prune=1
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--dry-run) DRY_RUN=1 ;;
    --max-unused) [ $# -ge 2 ] || die "--max-unused needs a value"; max_unused=$2; shift ;;
    --no-prune) do_prune=0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
require_env MEMENTO_REPOSITORY
daily=${BACKUP_RETENTION_DAILY:-7}
weekly=${BACKUP_RETENTION_WEEKLY:-4}
monthly=${BACKUP_RETENTION_MONTHLY:-12}
require_uint daily
require_uint weekly
require_uint monthly
[ $((daily + weekly + monthly)) -gt 0 ] || die "the retention policy keeps nothing (all of BACKUP_RETENTION_* are 0)"

run forget --all --keep-daily "$daily" --keep-weekly "$weekly" --keep-monthly "$monthly"
if [ "$do_prune" = 1 ]; then
  run prune --max-unused "$max_unused"
fi
