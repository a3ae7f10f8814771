#!/usr/bin/env bash
# s3.sh: the object-storage rows of the benchmark (issue 8), against a local
# MinIO. Run by scripts/bench.sh after its local rounds, with its variables
# exported; it appends rows to $RESULTS and exits 1 if an operation failed.
#
# Rows, every round on a freshly started MinIO (the same binary, settings and
# 127.0.0.1 port for every tool of the round), tools interleaved with the
# order rotating each round, cache dropped (or warmed) before each timed run:
#   s3backup1    first backup of the dataset straight into a fresh bucket:
#                memento (backup --all) vs restic (repo v2, --compression auto)
#   s3replicate  a local memento repository of the dataset copied to a fresh
#                bucket: memento replicate (defaults, no password) vs s3put, a plain upload
#                of the same files, 8 at once, one PutObject each, on the same
#                wire protocol (repo/backend/s3/internal/s3put)
# CPU s is the client's; the MinIO server's CPU seconds of the same run go in
# the "extra" column (both share the machine's cores).
#
# Standalone (for a quick look; writes rows to $BENCH_DIR/s3-results.tsv):
#   BENCH_SIZE=256M scripts/bench/s3.sh
# MinIO binary: $MEMENTO_MINIO_BIN, else .cache/bin/minio (scripts/minio.sh
# build), else minio on PATH; without one every row is a skip row.
set -uo pipefail

ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
HERE=$ROOT/scripts/bench
# shellcheck source=lib.sh
. "$HERE/lib.sh"
cd "$ROOT" || exit 1

BENCH_DIR=${BENCH_DIR:-/tmp/memento-bench-s3}
BENCH_RUNS=${BENCH_RUNS:-1}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}
BENCH_TOOLS=${BENCH_TOOLS:-memento restic}
S3_PARALLEL=${S3_PARALLEL:-8} # s3put's files at once
export MEMENTO_PASSWORD=${MEMENTO_PASSWORD:-memento-bench} RESTIC_PASSWORD=${RESTIC_PASSWORD:-memento-bench}
mkdir -p "$BENCH_DIR"
if [ -z "${BENCH_CACHE:-}" ]; then
  if [ -w /proc/sys/vm/drop_caches ] && (echo 1 >/proc/sys/vm/drop_caches) 2>/dev/null; then BENCH_CACHE=drop; else BENCH_CACHE=warm; fi
fi
export BENCH_CACHE BENCH_TIMEOUT
LOGS=${LOGS:-$BENCH_DIR/logs}
RESULTS=${RESULTS:-$BENCH_DIR/s3-results.tsv}
mkdir -p "$LOGS"
touch "$RESULTS"
FAILED=0
S3D=$BENCH_DIR/s3
MEMENTO=${MEMENTO:-$ROOT/bin/memento}
if [ -z "${ORIG:-}" ]; then # standalone: make a dataset
  ORIG=$S3D/orig
  if [ ! -d "$ORIG" ]; then
    "$ROOT/bin/engram-sim" generate --dir "$ORIG" --size "${BENCH_SIZE:-256M}" --spaces "${BENCH_SPACES:-3}" \
      --seed "${BENCH_SEED:-1}" >"$LOGS/s3-generate.log" 2>&1 || die "engram-sim generate failed"
  fi
fi
DATA_BYTES=${DATA_BYTES:-$(sum_sizes "$ORIG")}

skip_all() {
  skip_row memento s3backup1 "$1"
  skip_row restic s3backup1 "$1"
  skip_row memento s3replicate "$1"
  skip_row s3put s3replicate "$1"
  exit 0
}

minio_bin=
if [ -n "${MEMENTO_MINIO_BIN:-}" ] && [ -x "$MEMENTO_MINIO_BIN" ]; then minio_bin=$MEMENTO_MINIO_BIN
elif [ -x "$ROOT/.cache/bin/minio" ]; then minio_bin=$ROOT/.cache/bin/minio
elif command -v minio >/dev/null; then minio_bin=$(command -v minio)
fi
[ -n "$minio_bin" ] || skip_all "no MinIO binary: set MEMENTO_MINIO_BIN or run scripts/minio.sh build (takes minutes once)"
export MEMENTO_MINIO_BIN=$minio_bin
[ -x "$MEMENTO" ] || skip_all "no memento binary at $MEMENTO"
"$MEMENTO" help replicate 2>&1 | grep -q -- "--to" || skip_all "memento replicate is not in this build"

rm -rf "$S3D/local" "$S3D/cache" "$S3D"/minio-*
mkdir -p "$S3D/bin" "$S3D/cache"
S3PUT=$S3D/bin/s3put
go build -o "$S3PUT" ./repo/backend/s3/internal/s3put >"$LOGS/s3put-build.log" 2>&1 || S3PUT=
TOOLS=(memento)
[[ " $BENCH_TOOLS " == *" restic "* ]] && command -v restic >/dev/null && TOOLS+=(restic)
[[ " ${TOOLS[*]} " == *" restic "* ]] || skip_row restic s3backup1 "restic is not installed (or not in BENCH_TOOLS)"
REP_TOOLS=(memento)
if [ -n "$S3PUT" ]; then REP_TOOLS+=(s3put); else skip_row s3put s3replicate "go build of repo/backend/s3/internal/s3put failed (see $LOGS/s3put-build.log)"; fi

# The replication source: a memento repository of the dataset (not timed).
log "S3: backing up the dataset into a local repository, the source of the replication rows"
if ! { "$MEMENTO" init --repo "$S3D/local" && "$MEMENTO" backup --repo "$S3D/local" --data-dir "$ORIG" --all --no-progress; } \
  >"$LOGS/s3-local-repo.log" 2>&1; then
  log "S3: the local source repository failed: $(tail -n 3 "$LOGS/s3-local-repo.log")"
  REP_TOOLS=()
  skip_row memento s3replicate "could not make the local source repository (see $LOGS/s3-local-repo.log)"
fi
LOCAL_BYTES=$(sum_sizes "$S3D/local")

MINIO_PID=
stop_minio() {
  [ -n "${MINIO_DIR:-}" ] && "$ROOT/scripts/minio.sh" stop "$MINIO_DIR" >/dev/null 2>&1
  [ -n "${MINIO_DIR:-}" ] && rm -rf "$MINIO_DIR"
  MINIO_DIR= MINIO_PID=
}
trap stop_minio EXIT
minio_cpu() { [ -n "$MINIO_PID" ] && awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$MINIO_PID/stat" 2>/dev/null || echo 0; }

# s3_measure ROUND TOOL OP BYTES CMD INPUT: measure() plus MinIO's CPU seconds.
s3_measure() {
  local c0 c1
  c0=$(minio_cpu)
  measure "$@"
  c1=$(minio_cpu)
  S3_CPU=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
}

for ((round = 1; round <= BENCH_RUNS; round++)); do
  MINIO_DIR=$S3D/minio-r$round
  exports=$("$ROOT/scripts/minio.sh" start "$MINIO_DIR" 2>"$LOGS/s3-minio-r$round.log")
  if [ -z "$exports" ] || ! eval "$exports" || [ ! -f "$MINIO_DIR/minio.pid" ]; then
    log "S3: MinIO did not start: $(tail -n 3 "$LOGS/s3-minio-r$round.log")"
    skip_all "MinIO did not start (see $LOGS/s3-minio-r$round.log)"
  fi
  MINIO_PID=$(cat "$MINIO_DIR/minio.pid")
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
  url="s3:http://$MINIO_ENDPOINT"
  rm -rf "$S3D/cache" && mkdir -p "$S3D/cache"
  export MEMENTO_CACHE_DIR=$S3D/cache/memento RESTIC_CACHE_DIR=$S3D/cache/restic

  order=()
  for ((i = 0; i < ${#TOOLS[@]}; i++)); do order+=("${TOOLS[(i + round - 1) % ${#TOOLS[@]}]}"); done
  log "S3 round $round of $BENCH_RUNS on MinIO at $MINIO_ENDPOINT: backup ${order[*]}"
  # Every repository is created first (not timed), then MinIO gets a few
  # seconds to finish its start-up work, so no tool pays for it.
  declare -A init_ok=()
  for t in "${order[@]}"; do
    r="$url/$t-backup-r$round"
    case $t in
      memento) init=$(q "$MEMENTO" init --repo "$r") ;;
      restic) init=$(q restic -r "$r" init --repository-version 2) ;;
    esac
    if bash -c "$init" >"$LOGS/s3-r$round-$t-init.log" 2>&1; then
      init_ok[$t]=1
    else
      log "S3: $t init failed: $(tail -n 3 "$LOGS/s3-r$round-$t-init.log")"
      record "$round" "$t" s3backup1 fail - - "$DATA_BYTES" - - - "init failed, see $LOGS/s3-r$round-$t-init.log" -
      FAILED=$((FAILED + 1))
    fi
  done
  sleep 3
  for t in "${order[@]}"; do
    [ -n "${init_ok[$t]:-}" ] || continue
    r="$url/$t-backup-r$round"
    case $t in
      memento) cmd=$(q "$MEMENTO" backup --repo "$r" --data-dir "$ORIG" --all --no-progress) ;;
      restic) cmd=$(q restic -r "$r" backup --compression auto -q "$ORIG") ;;
    esac
    s3_measure "$round" "$t" s3backup1 "$DATA_BYTES" "$cmd" "$ORIG"
    stored=$(du -sb "$MINIO_DIR/data/$t-backup-r$round" 2>/dev/null | awk '{print $1}')
    finish_row "$round" "$t" s3backup1 "$DATA_BYTES" "${stored:--}" "${stored:--}" "$S3_CPU"
  done
  unset init_ok

  rorder=()
  for ((i = 0; i < ${#REP_TOOLS[@]}; i++)); do rorder+=("${REP_TOOLS[(i + round - 1) % ${#REP_TOOLS[@]}]}"); done
  [ ${#rorder[@]} -gt 0 ] && log "S3 round $round: replicate ${rorder[*]} ($LOCAL_BYTES bytes)"
  for t in "${rorder[@]}"; do
    b=$t-replica-r$round
    case $t in
      # No password: a replica host needs none, and with one memento
      # also appends an audit record (one key derivation, ~0.2 s).
      memento) cmd="env -u MEMENTO_PASSWORD -u MEMENTO_PASSWORD_FILE $(q "$MEMENTO" replicate --repo "$S3D/local" --to "$url/$b")" note="memento replicate, defaults, no password" ;;
      s3put) cmd=$(q "$S3PUT" -endpoint "$MINIO_ENDPOINT" -bucket "$b" -parallel "$S3_PARALLEL" "$S3D/local") note="$S3_PARALLEL files at once, one PutObject each" ;;
    esac
    s3_measure "$round" "$t" s3replicate "$LOCAL_BYTES" "$cmd" "$S3D/local"
    stored=$(du -sb "$MINIO_DIR/data/$b" 2>/dev/null | awk '{print $1}')
    finish_row "$round" "$t" s3replicate "$LOCAL_BYTES" "${stored:--}" - "$S3_CPU" "$note"
  done
  stop_minio
done
rm -rf "$S3D/local" "$S3D/cache"
[ "$FAILED" -gt 0 ] && exit 1
exit 0
