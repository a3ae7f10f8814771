# shellcheck shell=bash
# Shared by the operator scripts in scripts/ops/ (sourced, not run). Each
# script is a thin wrapper over one memento command line: it reads the
# deployment's environment, prints the command line with DRY_RUN=1 or
# --dry-run instead of running it, and exits with memento's own exit code
# (docs/cli.md, "Exit codes": 0 ok, 1 failure, 2 usage, 3 no repository,
# 4 wrong password, 5 corrupt, 6 locked, 7 not found, 8 unrecoverable,
# 130 interrupted).

# MEMENTO_BIN: the memento binary (default: memento on PATH).
MEMENTO_BIN=${MEMENTO_BIN:-memento}
DRY_RUN=${DRY_RUN:-0}

# die MESSAGE: a usage error (exit 2, as memento's own usage errors).
die() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  printf "Run '%s -h' for usage.\n" "${0##*/}" >&2
  exit 2
}

# require_env NAME...: each variable must be set and non-empty.
require_env() {
  local v
  for v in "$@"; do
    [ -n "${!v:-}" ] || die "$v is not set (see docs/operations/backup-restore.md)"
  done
}

# require_uint NAME: the variable must be a non-negative integer.
require_uint() {
  [[ ${!1} =~ ^[0-9]+$ ]] || die "$1 must be a non-negative integer, not '${!1}'"
}

# dry_run: true when DRY_RUN=1 (or --dry-run set it).
dry_run() {
  [ "$DRY_RUN" = 1 ] || [ "$DRY_RUN" = true ]
}

# run ARGS...: run memento with ARGS, or print the command line under
# dry-run. A failure exits the script with memento's exit code.
run() {
  if dry_run; then
    printf '+'
    printf ' %q' "$MEMENTO_BIN" "$@"
    printf '\n'
    return 0
  fi
  local rc=0 what=$1
  case $1 in
    wal|pitr|index) what="$1 $2" ;;
  esac
  "$MEMENTO_BIN" "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '%s: memento %s exited %d\n' "${0##*/}" "$what" "$rc" >&2
    exit "$rc"
  fi
}
