#!/usr/bin/env bash
# bench.sh: memento against restic, borg and tar|zstd, on the same data, in
# the same run, timed the same way (see docs/benchmarks.md). Every row runs
# on each data profile of BENCH_PROFILES in turn:
#   default    engram-sim generate --profile default (the historical mix)
#   wal-heavy  engram-sim generate --profile wal-heavy (WAL 50 %, unique embeddings)
#   gosrc      a copy of the Go toolchain's src/ (~11k small files), backed up as plain paths
#
#   make bench                    # 1 GiB, 3 runs, every profile, writes docs/benchmarks.md
#   make bench-quick              # 256 MiB, 1 run, writes $BENCH_DIR/benchmarks.md
#   make bench-smoke              # tiny, memento and restic, every profile (part of make test later)
#   BENCH_PROFILES=wal-heavy make bench   # one profile
#   BENCH_SIZE=10G make bench     # 10 GiB (needs about 7x the size in free disk)
#
# Environment (defaults in brackets):
#   BENCH_PROFILES [default wal-heavy gosrc]  data profiles, each gets every row
#   BENCH_SIZE [1G]        dataset size (engram-sim units: 1G = 1 GiB); gosrc is the whole
#                          tree, or its first files in sorted order up to BENCH_SIZE if smaller
#   BENCH_GOSRC [$(go env GOROOT)/src]  the tree the gosrc profile copies
#   BENCH_SPACES [3]       number of spaces
#   BENCH_SEED [1]         engram-sim generate seed; the day's mutation uses BENCH_SEED+1
#   BENCH_RUNS [3; 1 below 1 GiB]  rounds (BENCH_ROUNDS is the same); every figure is the median
#   BENCH_DIR [/tmp/memento-bench]  work dir (deleted at the end unless BENCH_KEEP=1)
#   BENCH_CACHE [drop if permitted, else warm]  page cache before each timed run
#   BENCH_TOOLS [memento restic borg tar]  which rows to run
#   BENCH_REQUIRE [restic when CI is set, else none]  peers that must be installed: a
#                          missing one is an error instead of a skipped row
#   BENCH_BORG_COMPRESSION [lz4]  borg's default; zstd,3 is the other sensible choice
#   BENCH_TIMEOUT [3600]   seconds before one timed command is killed (counts as failed)
#   BENCH_GO [1]           also run the walreplay Go benchmark for WAL replay entries/s
#   BENCH_PITR100 [1]      also the 100 MB WAL archive and PITR-over-1,000-segments rows
#   BENCH_EMB_BYTES [1 GiB; 256 MiB below a 1 GiB dataset]  the one-file-of-embeddings FUSE row
#   BENCH_NO_BUILD [0]     1: use bin/memento and bin/engram-sim as they are (no make build)
#   BENCH_OUT [docs/benchmarks.md for >= 1 GiB, else $BENCH_DIR/benchmarks.md]
#   BENCH_S3 [1]           also the MinIO rows (scripts/bench/s3.sh, on the first data-dir
#                          profile; skipped without a MinIO binary)
#
# Exit status: 0 when every tool did every operation it has; 1 when a tool
# failed (a slow figure never fails the run: benchmarks report, they do not gate).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/scripts/bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

BENCH_PROFILES=${BENCH_PROFILES:-default wal-heavy gosrc}
BENCH_SIZE=${BENCH_SIZE:-1G}
BENCH_SPACES=${BENCH_SPACES:-3}
BENCH_SEED=${BENCH_SEED:-1}
BENCH_DIR=${BENCH_DIR:-/tmp/memento-bench}
BENCH_TOOLS=${BENCH_TOOLS:-memento restic borg tar}
BENCH_BORG_COMPRESSION=${BENCH_BORG_COMPRESSION:-lz4}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}
BENCH_GO=${BENCH_GO:-1}
export BENCH_CACHE BENCH_TIMEOUT

# ---------------------------------------------------------------- setup
cd "$ROOT" || exit 1
START=$(now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
[ -n "${MAKELEVEL:-}" ] || [ "${BENCH_NO_BUILD:-0}" = 1 ] || make -s build || die "make build failed (BENCH_NO_BUILD=1 uses the binaries already in bin/)"
[ -x bin/memento ] && [ -x bin/engram-sim ] || die "bin/memento or bin/engram-sim missing (make build)"

size_bytes=$(awk -v s="$BENCH_SIZE" 'BEGIN {
  n = s + 0; u = tolower(s); sub(/^[0-9.]+[ ]*/, "", u)
  m["" ] = 1; m["b"] = 1; m["k"] = m["kib"] = 2^10; m["m"] = m["mib"] = 2^20; m["g"] = m["gib"] = 2^30
  m["t"] = m["tib"] = 2^40; m["kb"] = 1e3; m["mb"] = 1e6; m["gb"] = 1e9; m["tb"] = 1e12
  printf "%.0f\n", (u in m) ? n * m[u] : 0 }')
smoke=0
[ "$size_bytes" -gt 0 ] && [ "$size_bytes" -lt $((1 << 30)) ] && smoke=1
BENCH_RUNS=${BENCH_RUNS:-${BENCH_ROUNDS:-$([ $smoke = 1 ] && echo 1 || echo 3)}}
if [ -z "${BENCH_OUT:-}" ]; then
  if [ $smoke = 1 ]; then BENCH_OUT=$BENCH_DIR/benchmarks.md; else BENCH_OUT=$ROOT/docs/benchmarks.md; fi
fi
if [ -z "${BENCH_CACHE:-}" ]; then
  if [ -w /proc/sys/vm/drop_caches ] && (echo 1 >/proc/sys/vm/drop_caches) 2>/dev/null; then
    BENCH_CACHE=drop
  else
    BENCH_CACHE=warm
  fi
fi

# Peers: Debian packages only (never downloaded binaries).
need_pkgs=()
for p in restic:restic borg:borgbackup zstd:zstd /usr/bin/time:time fusermount3:fuse3; do
  command -v "${p%%:*}" >/dev/null 2>&1 || need_pkgs+=("${p#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]} from the distribution (apt-get)"
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null 2>&1; }
  else
    sudo -n apt-get install -y -q "${need_pkgs[@]}" >/dev/null 2>&1
  fi
fi
command -v zstd >/dev/null && [ -x /usr/bin/time ] || die "zstd and GNU time are required (apt-get install zstd time)"
BENCH_REQUIRE=${BENCH_REQUIRE-$([ -n "${CI:-}" ] && [ "${CI:-}" != false ] && echo restic)}
for t in $BENCH_REQUIRE; do
  command -v "$t" >/dev/null || die "$t is required (BENCH_REQUIRE=\"$BENCH_REQUIRE\"; CI=${CI:-}) but not installed, and apt-get could not install it"
done
# Profiles: gosrc, or one of engram-sim's (listed in its generate --help).
sim_profiles=$(bin/engram-sim generate --help 2>/dev/null | sed -n 's/^  \([a-z0-9-]*\): .*/\1/p' | paste -sd' ' -)
for p in $BENCH_PROFILES; do
  [ "$p" = gosrc ] || [[ " $sim_profiles " == *" $p "* ]] ||
    die "unknown profile $p in BENCH_PROFILES (valid: gosrc $sim_profiles)"
done
GOSRC=${BENCH_GOSRC:-}
if [[ " $BENCH_PROFILES " == *" gosrc "* ]]; then
  [ -n "$GOSRC" ] || GOSRC=$(go env GOROOT 2>/dev/null)/src
  [ -d "$GOSRC" ] || die "the gosrc profile needs a Go source tree: $GOSRC is not a directory (BENCH_GOSRC)"
fi

# Work dir: a frozen copy of the binaries (others may rebuild bin/ meanwhile).
mkdir -p "$BENCH_DIR" || die "cannot create $BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
for d in bin orig live repos cache restore mnt logs pitr emb; do rm -rf "${BENCH_DIR:?}/$d"; done
rm -f "$BENCH_DIR"/results*.tsv "$BENCH_DIR"/profile-*.env
mkdir -p "$BENCH_DIR"/{bin,repos,cache,restore,mnt,logs}
cp bin/memento bin/engram-sim "$BENCH_DIR/bin/"
MEMENTO=$BENCH_DIR/bin/memento
SIM=$BENCH_DIR/bin/engram-sim
ORIG=$BENCH_DIR/orig LIVE=$BENCH_DIR/live LOGS_ROOT=$BENCH_DIR/logs LOGS=$BENCH_DIR/logs
# Rows go to one file per profile (results-PROFILE.tsv), rows that do not
# depend on the data to results-common.tsv; both start as a copy of the
# setup's skip rows (results-setup.tsv).
SETUP_RESULTS=$BENCH_DIR/results-setup.tsv COMMON_RESULTS=$BENCH_DIR/results-common.tsv
RESULTS=$SETUP_RESULTS
: >"$RESULTS"
FAILED=0
export MEMENTO_PASSWORD=memento-bench RESTIC_PASSWORD=memento-bench BORG_PASSPHRASE=memento-bench
export MEMENTO_CACHE_DIR=$BENCH_DIR/cache/memento RESTIC_CACHE_DIR=$BENCH_DIR/cache/restic
export BORG_BASE_DIR=$BENCH_DIR/cache/borg BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO

MOUNT_PID=
cleanup() {
  [ -n "$MOUNT_PID" ] && unmount "$BENCH_DIR/mnt" "$MOUNT_PID"
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    for d in orig live repos cache restore mnt pitr emb; do rm -rf "${BENCH_DIR:?}/$d"; done
  fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

TOOLS=()
for t in $BENCH_TOOLS; do
  case $t in
    memento) TOOLS+=(memento) ;;
    restic | borg) if command -v "$t" >/dev/null; then TOOLS+=("$t"); else skip_row "$t" backup1 "$t is not installed (apt-get install -y ${t/borg/borgbackup} failed)"; fi ;;
    tar) TOOLS+=(tar) ;;
    *) die "unknown tool $t in BENCH_TOOLS" ;;
  esac
done

# ---------------------------------------------------------------- datasets
# prepare_dataset PROFILE writes the profile's data to ORIG and sets KIND
# (datadir: an Engram data dir backed up with --data-dir; paths: a plain
# tree backed up as a path) and the dataset figures.
prepare_dataset() {
  local p=$1 free
  rm -rf "$ORIG"
  if [ "$p" = gosrc ]; then
    KIND=paths
    log "copying $GOSRC (the gosrc profile; up to $BENCH_SIZE) to $ORIG"
    # The whole tree, or its first files in sorted order up to BENCH_SIZE.
    (cd "$GOSRC" && find . -type f -printf '%s %P\n' | LC_ALL=C sort -k2) |
      awk -v lim="$size_bytes" '{ s += $1; if (s > lim && n > 0) exit; n++; sub(/^[0-9]+ /, ""); print }' >"$LOGS/gosrc-files.txt"
    mkdir -p "$ORIG"
    tar -C "$GOSRC" -cf - --no-recursion --verbatim-files-from -T "$LOGS/gosrc-files.txt" | tar -C "$ORIG" -xf - ||
      die "copying $GOSRC failed"
    local all
    all=$(find "$GOSRC" -type f | wc -l)
    GEN_LINE="$(wc -l <"$LOGS/gosrc-files.txt") of the $all files of $GOSRC ($(go version 2>/dev/null | awk '{print $3}'))"
    DATASET_CMD="copy of \`$GOSRC\`"
    SPACES=()
    WAL_SEGS=0
  else
    KIND=datadir
    log "generating a $BENCH_SIZE Engram data dir (profile $p, $BENCH_SPACES spaces, seed $BENCH_SEED) in $ORIG"
    "$SIM" generate --profile "$p" --dir "$ORIG" --size "$BENCH_SIZE" --spaces "$BENCH_SPACES" --seed "$BENCH_SEED" \
      >"$LOGS/generate.log" 2>&1 || { cat "$LOGS/generate.log" >&2; die "engram-sim generate --profile $p failed"; }
    GEN_LINE=$(tail -n 1 "$LOGS/generate.log")
    DATASET_CMD="engram-sim generate --profile $p --size $BENCH_SIZE --spaces $BENCH_SPACES --seed $BENCH_SEED"
    WAL_SEGS=$(find "$ORIG"/spaces/*/wal -name 'wal-*.log' | wc -l)
    mapfile -t SPACES < <(cd "$ORIG/spaces" && ls)
  fi
  DATA_BYTES=$(sum_sizes "$ORIG")
  DATA_FILES=$(find "$ORIG" -type f | wc -l)
  free=$(df -B1 --output=avail "$BENCH_DIR" | tail -n 1)
  if [ "$free" -lt $((DATA_BYTES * 6)) ]; then
    log "warning: $((free >> 30)) GiB free in $BENCH_DIR; a run needs about 6x the dataset ($((DATA_BYTES * 6 >> 30)) GiB)"
  fi
  log "dataset $p: $DATA_BYTES bytes, $DATA_FILES files${SPACES[*]:+, spaces ${SPACES[*]}}"
}

# The day of activity is applied in place to the live copy, so unchanged
# files keep their inode and times, as on a real server. Data dirs:
# engram-sim mutate with the profile's day. gosrc: a comment line appended
# to every 100th file in sorted order (1 % of the files, deterministic).
MUTATE_SEED=$((BENCH_SEED + 1))
reset_live() {
  rm -rf "$LIVE"
  cp -a --reflink=auto "$ORIG" "$LIVE"
}
mutate_live() {
  if [ "$KIND" = paths ]; then
    (cd "$LIVE" && find . -type f -printf '%P\n' | LC_ALL=C sort | awk 'NR % 100 == 0') >"$LOGS/day-files.txt"
    while IFS= read -r f; do
      printf '\n// memento benchmark: one edit of the day of activity\n' >>"$LIVE/$f"
    done <"$LOGS/day-files.txt"
    echo "appended a comment line to $(wc -l <"$LOGS/day-files.txt") of $DATA_FILES files (every 100th in sorted order)" >"$LOGS/mutate.log"
    return
  fi
  "$SIM" mutate --profile "$PROFILE" --dir "$LIVE" --seed "$MUTATE_SEED" >"$LOGS/mutate.log" 2>&1 ||
    { cat "$LOGS/mutate.log" >&2; die "engram-sim mutate --profile $PROFILE failed"; }
}

# ---------------------------------------------------------------- tools
# repo_of TOOL, and the command lines of each tool's operations.
repo_of() { echo "$BENCH_DIR/repos/$1"; }

init_cmd() {
  local r
  r=$(repo_of "$1")
  case $1 in
    memento) q "$MEMENTO" init --repo "$r" ;;
    restic) q restic -r "$r" init --repository-version 2 ;;
    borg) q borg init -e repokey-blake2 "$r" ;;
    tar) q mkdir -p "$r" ;;
  esac
}

backup_cmd() { # TOOL N
  local r
  r=$(repo_of "$1")
  case $1 in
    memento)
      if [ "$KIND" = paths ]; then
        q "$MEMENTO" backup --repo "$r" --no-progress "$LIVE"
      else
        q "$MEMENTO" backup --repo "$r" --data-dir "$LIVE" --all --no-progress
      fi ;;
    restic) q restic -r "$r" backup --compression auto -q "$LIVE" ;;
    borg) q borg create --compression "$BENCH_BORG_COMPRESSION" "$r::b$2" "$LIVE" ;;
    tar) q "$HERE/tar-backup.sh" "$LIVE" "$r/b$2.tar.zst" ;;
  esac
}

restore_cmd() { # TOOL TARGET: restores the latest backup (after the day)
  local r=$(repo_of "$1") t=$2 s c= id
  case $1 in
    memento)
      if [ "$KIND" = paths ]; then
        # A path snapshot is restored by id (looked up here, before the clock starts).
        id=$("$MEMENTO" snapshots --repo "$r" --json 2>/dev/null | sed -n 's/^ *"id": "\([0-9a-f]*\)".*/\1/p' | tail -n 1)
        q "$MEMENTO" restore --repo "$r" "${id:-no-snapshot}" --target "$t" --no-progress
      elif "$MEMENTO" restore --help 2>/dev/null | grep -q -- '--all --latest'; then
        q "$MEMENTO" restore --repo "$r" --all --latest --target "$t" --no-progress # every space, one command
      else
        for s in "${SPACES[@]}"; do
          c+="$(q "$MEMENTO" restore --repo "$r" --space "$s" --latest --target "$t" --no-progress) && "
        done
        echo "${c}true"
      fi
      ;;
    restic) q restic -r "$r" restore latest --target "$t" -q ;;
    borg) echo "cd $(q "$t") && $(q borg extract "$r::b3")" ;;
    tar) echo "zstd -d -q -c $(q "$r/b3.tar.zst") | tar -xf - -C $(q "$t")" ;;
  esac
}

# repo_bytes TOOL N sets REPO_BYTES to the repository's size after backup N. The tar baseline
# keeps only its newest archive on disk (three full archives of a 10 GiB
# dataset would not fit beside the rest) and counts the older ones it deleted.
TAR_DELETED=0
repo_bytes() {
  local r
  r=$(repo_of "$1")
  if [ "$1" = tar ] && [ "$2" -gt 1 ] && [ -f "$r/b$(($2 - 1)).tar.zst" ]; then
    TAR_DELETED=$((TAR_DELETED + $(sum_sizes "$r/b$(($2 - 1)).tar.zst" "$r/b$(($2 - 1)).tar.zst.sha256")))
    rm -f "$r/b$(($2 - 1)).tar.zst" "$r/b$(($2 - 1)).tar.zst.sha256"
  fi
  REPO_BYTES=$(dir_bytes "$r")
  [ "$1" = tar ] && REPO_BYTES=$((REPO_BYTES + TAR_DELETED))
  # memento's local repository keeps a fixed 4 MiB file of room for a full
  # disk (repo/backend/local/reserve.go): space held, not backed-up data
  if [ "$1" = memento ] && [ -f "$r/.tmp-reserve" ]; then
    REPO_BYTES=$((REPO_BYTES - $(stat -c %s "$r/.tmp-reserve")))
  fi
  return 0
}

# restored_root TOOL TARGET: where the live dir's content lands in a restore.
restored_root() {
  case $1 in
    # memento stores full paths (as restic); builds before that stored the last element
    memento) if [ "$KIND" != paths ]; then echo "$2"; elif [ -d "$2$LIVE" ]; then echo "$2$LIVE"; else echo "$2/$(basename "$LIVE")"; fi ;;
    tar) echo "$2" ;;
    restic) echo "$2$LIVE" ;;
    borg) echo "$2/${LIVE#/}" ;;
  esac
}

# ---------------------------------------------------------------- rounds
HAS_MOUNT=0 HAS_VERIFY=0 HAS_WAL_ARCHIVE=0
has_cmd mount && HAS_MOUNT=1
has_cmd verify && has_flag level verify && HAS_VERIFY=1
has_cmd wal archive && HAS_WAL_ARCHIVE=1
[ $HAS_MOUNT = 1 ] || skip_row memento mountread "memento mount is not in this build"
[ $HAS_VERIFY = 1 ] || skip_row memento verify "memento verify --level is not in this build"
[ $HAS_WAL_ARCHIVE = 1 ] || { skip_row memento walarchive0 "memento wal archive is not in this build"; skip_row memento walarchive1 "memento wal archive is not in this build"; }
RESTIC_MOUNT=1
if ! restic mount --help >/dev/null 2>&1 || [ ! -e /dev/fuse ]; then
  RESTIC_MOUNT=0
  for op in mountread mountwal mountwarm mountcold; do skip_row restic $op "restic mount or /dev/fuse unavailable"; done
fi
if [ $HAS_MOUNT = 0 ]; then
  for op in mountwal mountwarm mountcold; do skip_row memento $op "memento mount is not in this build"; done
fi

# the file a FUSE row reads (set per row: the day's largest file of a kind), as a path relative to LIVE.
largest_rel=
wal_bytes() { sum_sizes "$LIVE"/spaces/*/wal; }

# day_new_bytes: the bytes the day truly made new (issue 18's "truly new
# bytes"), from engram-sim mutate's report and the files after the day: the
# appended WAL (DAY_WAL), the warm pages rewritten in place (4 KiB each, not
# the chunks that hold them), the new cold segments, and the hot files and
# checkpoint.json, which the day rewrites whole (their size after the day).
day_new_bytes() {
  local warm cold
  warm=$(sed -n 's/.*warm \([0-9]*\) of [0-9]* pages rewritten.*/\1/p' "$LOGS/mutate.log" | awk '{s += $1 * 4096} END {printf "%.0f", s}')
  cold=$(sed -n 's/.*cold seg-[0-9]*\.col (\([0-9]*\) bytes.*/\1/p' "$LOGS/mutate.log" | awk '{s += $1} END {printf "%.0f", s}')
  echo $((DAY_WAL + warm + cold + $(sum_sizes "$LIVE"/spaces/*/hot "$LIVE"/spaces/*/checkpoint.json)))
}

# largest_in_mount TOOL MNT prints the file largest_rel names inside a mount.
largest_in_mount() {
  local tool=$1 mnt=$2 c
  if [ "$KIND" = paths ]; then
    case $tool in
      memento)
        # The path restic's row reads (a snapshot keeps the absolute path it
        # backed up). A walk of the whole tree here would leave thousands of
        # inodes for the drop_caches to evict, and go-fuse's compaction after
        # that many FORGETs (a forced GC and debug.FreeOSMemory, 0.1-0.15 CPU
        # s on gosrc) would run during the timed read; restic's row has none.
        c="$mnt/snapshots/latest$LIVE/$largest_rel"
        [ -f "$c" ] || c="$mnt/snapshots/latest/$(basename "$LIVE")/$largest_rel"
        if [ -f "$c" ]; then echo "$c"; else find -L "$mnt/snapshots/latest/" -path "*/$largest_rel" -type f 2>/dev/null | head -n 1; fi ;;
      restic) echo "$mnt/snapshots/latest$LIVE/$largest_rel" ;;
    esac
    return
  fi
  local space=${largest_rel#spaces/}
  space=${space%%/*}
  local inner=${largest_rel#spaces/"$space"/}
  case $tool in
    memento)
      for c in "$mnt/spaces/$space/latest/$inner" "$mnt/spaces/$space/latest/spaces/$space/$inner" "$mnt/spaces/$space/latest$LIVE/$largest_rel"; do
        [ -f "$c" ] && echo "$c" && return
      done
      find -L "$mnt/spaces/$space/latest/" -path "*/$inner" -type f 2>/dev/null | head -n 1 ;;
    restic) echo "$mnt/snapshots/latest$LIVE/$largest_rel" ;;
  esac
}

# server_ticks PID prints the user+system clock ticks PID has used (all threads).
server_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# mount_read ROUND TOOL [OP REPO FINDER NOTE]: mount the repository (by
# default the tool's main one), read one file (by default the day's largest,
# found by FINDER TOOL MNT) once with dd, timed from a cold page cache. The
# mount is up and the file looked up before the clock starts.
mount_read() {
  local round=$1 tool=$2 op=${3:-mountread} r=${4:-} finder=${5:-largest_in_mount} note=${6:-$largest_rel}
  local mnt=$BENCH_DIR/mnt f probe bytes
  [ -n "$r" ] || r=$(repo_of "$tool")
  rm -rf "$mnt" && mkdir -p "$mnt"
  case $tool in
    memento)
      "$MEMENTO" mount --repo "$r" "$mnt" >"$LOGS/r$round-memento-$op-mount.log" 2>&1 &
      probe=snapshots/latest ;;
    restic)
      restic -r "$r" mount "$mnt" >"$LOGS/r$round-restic-$op-mount.log" 2>&1 &
      probe=snapshots/latest ;;
  esac
  MOUNT_PID=$!
  if ! mount_wait "$mnt" "$probe" 60; then
    M_RC=1 M_WALL=0 M_RSS=0 M_LOG=$LOGS/r$round-$tool-$op-mount.log
    log "  $tool $op: the mount did not come up in 60 s"
    finish_row "$round" "$tool" "$op" 0
    unmount "$mnt" "$MOUNT_PID"; MOUNT_PID=
    return
  fi
  f=$("$finder" "$tool" "$mnt")
  bytes=$(stat -L -c %s "$f" 2>/dev/null || echo 0)
  # CPU s of a mount read: dd's plus the mount server's during the dd (the
  # server does the work: fetching, decrypting, decompressing, verifying).
  local c0
  c0=$(server_ticks "$MOUNT_PID")
  measure "$round" "$tool" "$op" "$bytes" "$(q dd if="$f" of=/dev/null bs=1M status=none)"
  M_CPU=$(awk -v d="$M_CPU" -v a="$c0" -v b="$(server_ticks "$MOUNT_PID")" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", d + (b - a) / hz}')
  finish_row "$round" "$tool" "$op" "$bytes" - - - "$note"
  unmount "$mnt" "$MOUNT_PID"
  MOUNT_PID=
}

# ------------------------------------------ FUSE: one large file of embeddings
# Issue 5 names a 1 GiB file: a single file of float32 embedding vectors (768
# dimensions, unit length, the content of Engram's cold tier), backed up once
# by memento and by restic, then per round read through each tool's mount
# (mountemb) and restored by memento alone (restoreemb, the 50 % baseline of
# the same file). 1 GiB, or 256 MiB below a 1 GiB dataset (make bench-quick).
# Its own repositories and caches, which the rounds do not reset.
EMB=$BENCH_DIR/emb
EMB_BYTES=${BENCH_EMB_BYTES:-$([ $smoke = 1 ] && echo $((256 << 20)) || echo $((1 << 30)))}
HAS_EMB=0
emb_env() { printf 'MEMENTO_CACHE_DIR=%q RESTIC_CACHE_DIR=%q ' "$EMB/cache/memento" "$EMB/cache/restic"; }
emb_file() { find -L "$2/snapshots/latest/" -name embeddings.f32 -type f 2>/dev/null | head -n 1; }
emb_setup() {
  rm -rf "$EMB" && mkdir -p "$EMB"/{data,gen,cache}
  # The generator is Go (seeded, 1 GiB in seconds); go is there since make build.
  cat >"$EMB/gen/main.go" <<'EOF'
// Writes N bytes of float32 unit vectors (dim 768, Gaussian components), little endian.
package main

import (
	"bufio"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	n, _ := strconv.ParseInt(os.Args[2], 10, 64)
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(5, 7))
	v := make([]float64, 768)
	b := make([]byte, 4*len(v))
	for left := n; left > 0; {
		var s float64
		for i := range v {
			v[i] = rng.NormFloat64()
			s += v[i] * v[i]
		}
		s = math.Sqrt(s)
		for i := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v[i]/s)))
		}
		k := min(left, int64(len(b)))
		w.Write(b[:k])
		left -= k
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
}
EOF
  printf 'module embgen\n\ngo 1.22\n' >"$EMB/gen/go.mod"
  if ! (cd "$EMB/gen" && "${GO:-go}" run . "$EMB/data/embeddings.f32" "$EMB_BYTES") >"$LOGS/emb-gen.log" 2>&1; then
    skip_row memento mountemb "could not generate the embeddings file (go run failed, see $LOGS/emb-gen.log)"
    return
  fi
  log "embeddings file: $EMB_BYTES bytes; backing it up with memento and restic (not timed)"
  if ! env MEMENTO_CACHE_DIR="$EMB/cache/memento" bash -c "$(q "$MEMENTO" init --repo "$EMB/memento") >/dev/null && $(q "$MEMENTO" backup --repo "$EMB/memento" --no-progress "$EMB/data")" >"$LOGS/emb-memento-backup.log" 2>&1; then
    skip_row memento mountemb "memento backup of the embeddings file failed (see $LOGS/emb-memento-backup.log)"
    return
  fi
  EMB_SNAP=$(env MEMENTO_CACHE_DIR="$EMB/cache/memento" "$MEMENTO" snapshots --repo "$EMB/memento" --json 2>/dev/null | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' | head -n 1)
  [ -n "$EMB_SNAP" ] || { skip_row memento mountemb "no snapshot of the embeddings file (memento snapshots --json)"; return; }
  HAS_EMB=1
  [[ " ${TOOLS[*]} " == *" restic "* ]] || return
  if [ $RESTIC_MOUNT = 0 ]; then
    skip_row restic mountemb "restic mount or /dev/fuse unavailable"
  elif ! env RESTIC_CACHE_DIR="$EMB/cache/restic" bash -c "$(q restic -r "$EMB/restic" init --repository-version 2) >/dev/null && $(q restic -r "$EMB/restic" backup --compression auto -q "$EMB/data")" >"$LOGS/emb-restic-backup.log" 2>&1; then
    skip_row restic mountemb "restic backup of the embeddings file failed (see $LOGS/emb-restic-backup.log)"
  fi
}
# emb_round ROUND: the embeddings file through each mount, then memento's restore of it.
emb_round() {
  local round=$1 t target
  for t in "${order[@]}"; do
    case $t in
      memento) MEMENTO_CACHE_DIR=$EMB/cache/memento mount_read "$round" memento mountemb "$EMB/memento" emb_file "embeddings.f32, one file" ;;
      restic) grep -q "	restic	mountemb	skip" "$RESULTS" || RESTIC_CACHE_DIR=$EMB/cache/restic mount_read "$round" restic mountemb "$EMB/restic" emb_file "embeddings.f32, one file" ;;
    esac
  done
  target=$BENCH_DIR/restore/emb
  rm -rf "$BENCH_DIR/restore" && mkdir -p "$target"
  measure "$round" memento restoreemb "$EMB_BYTES" "$(emb_env)$(q "$MEMENTO" restore --repo "$EMB/memento" "$EMB_SNAP" --target "$target" --no-progress)" "$EMB/memento"
  finish_row "$round" memento restoreemb "$EMB_BYTES" - - - "embeddings.f32, one file"
  rm -rf "$BENCH_DIR/restore"
}
RESULTS=$COMMON_RESULTS
cp "$SETUP_RESULTS" "$RESULTS"
if [ $HAS_MOUNT = 1 ] && [[ " ${TOOLS[*]} " == *" memento "* ]]; then
  emb_setup
else
  skip_row memento mountemb "memento mount is not in this build, or memento not in BENCH_TOOLS"
fi

# pitr_seq: a WAL sequence in the middle of the day for the first space, so
# that recovery starts from the pre-day snapshot and replays archived WAL.
pitr_seq() {
  sed -n "s/^${SPACES[0]}: .*seq \([0-9]*\)\.\.\([0-9]*\).*/\1 \2/p" "$LOGS/mutate.log" | awk '{printf "%.0f", ($1+$2)/2}'
}

# mount_kinds sets MOUNT_OPS and MOUNT_RELS: the FUSE rows of the profile and
# the file each reads (the largest of its kind after the day, relative to LIVE).
mount_kinds() {
  MOUNT_OPS=() MOUNT_RELS=()
  local op pat rel
  if [ "$KIND" = paths ]; then
    set -- mountread '*'
  else
    set -- mountwal '*/wal/wal-*.log' mountwarm '*/warm/*' mountcold '*/cold/seg-*.col'
  fi
  while [ $# -gt 0 ]; do
    op=$1 pat=$2
    shift 2
    rel=$(cd "$LIVE" && find . -type f -path "$pat" -printf '%s %P\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
    [ -n "$rel" ] || continue
    MOUNT_OPS+=("$op") MOUNT_RELS+=("$rel")
  done
}

# run_profile PROFILE: every round of every tool on the profile's data,
# rows into results-PROFILE.tsv, figures for the report into profile-PROFILE.env.
FIRST_DATADIR=
run_profile() {
  PROFILE=$1
  LOGS=$LOGS_ROOT/$PROFILE
  mkdir -p "$LOGS"
  RESULTS=$BENCH_DIR/results-$PROFILE.tsv
  cp "$SETUP_RESULTS" "$RESULTS"
  local p_start p_load_start round i t n prev wb wsz wal_before target note src dst r c seq pb k
  p_start=$(now)
  p_load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  log "== profile $PROFILE"
  prepare_dataset "$PROFILE"
  local datadir=0
  [ "$KIND" = datadir ] && datadir=1
  [ $datadir = 1 ] && [ -z "$FIRST_DATADIR" ] && FIRST_DATADIR=$PROFILE
  DAY_WAL=0 DAY_NEW=0

  for ((round = 1; round <= BENCH_RUNS; round++)); do
    # Rotate the tool order every round so drift hits every tool alike.
    order=()
    for ((i = 0; i < ${#TOOLS[@]}; i++)); do order+=("${TOOLS[(i + round - 1) % ${#TOOLS[@]}]}"); done
    log "profile $PROFILE, round $round of $BENCH_RUNS: ${order[*]}"
    reset_live
    rm -rf "$BENCH_DIR"/repos/* "$BENCH_DIR"/cache/*
    TAR_DELETED=0
    for t in "${order[@]}"; do
      bash -c "$(init_cmd "$t")" >"$LOGS/r$round-$t-init.log" 2>&1 ||
        { log "$t init failed: $(tail -n 3 "$LOGS/r$round-$t-init.log")"; FAILED=$((FAILED + 1)); }
    done
    declare -A size_after=()

    for n in 1 2; do
      for t in "${order[@]}"; do
        measure "$round" "$t" "backup$n" "$DATA_BYTES" "$(backup_cmd "$t" "$n")" "$LIVE"
        repo_bytes "$t" "$n"
        size_after[$t]=$REPO_BYTES
        prev=${size_after[$t.prev]:-0}
        finish_row "$round" "$t" "backup$n" "$DATA_BYTES" "${size_after[$t]}" $((size_after[$t] - prev))
        size_after[$t.prev]=${size_after[$t]}
      done
      if [ $n = 1 ] && [ $datadir = 1 ] && [ $HAS_WAL_ARCHIVE = 1 ] && [[ " ${TOOLS[*]} " == *" memento "* ]]; then
        wb=$(wal_bytes)
        measure "$round" memento walarchive0 "$wb" "$(q "$MEMENTO" wal archive --repo "$(repo_of memento)" --data-dir "$LIVE" --all)" "$LIVE"
        repo_bytes memento 1 # without the reserve, as every backup row
        wsz=$REPO_BYTES
        finish_row "$round" memento walarchive0 "$wb" "$wsz" $((wsz - ${size_after[memento.prev]}))
        size_after[memento.prev]=$wsz
      fi
    done

    # The unchanged re-backup again with the key cache (docs/security.md):
    # argon2id is paid once per session, not by every command. Primed by
    # an untimed command; the row's ratios are to restic's backup2.
    if [[ " ${TOOLS[*]} " == *" memento "* ]]; then
      MEMENTO_KEY_CACHE=15m "$MEMENTO" snapshots --repo "$(repo_of memento)" >/dev/null 2>&1
      measure "$round" memento backup2kc "$DATA_BYTES" "MEMENTO_KEY_CACHE=15m $(backup_cmd memento 2)" "$LIVE"
      repo_bytes memento 2
      finish_row "$round" memento backup2kc "$DATA_BYTES" "$REPO_BYTES" $((REPO_BYTES - ${size_after[memento.prev]}))
      size_after[memento.prev]=$REPO_BYTES
    fi

    [ $datadir = 1 ] && wal_before=$(wal_bytes)
    mutate_live
    DAY_BYTES=$(sum_sizes "$LIVE")
    [ $datadir = 1 ] && DAY_WAL=$(($(wal_bytes) - wal_before)) && DAY_NEW=$(day_new_bytes)
    if [ $datadir = 1 ] && [ $HAS_WAL_ARCHIVE = 1 ] && [[ " ${TOOLS[*]} " == *" memento "* ]]; then
      measure "$round" memento walarchive1 "$DAY_WAL" "$(q "$MEMENTO" wal archive --repo "$(repo_of memento)" --data-dir "$LIVE" --all)" "$LIVE"
      repo_bytes memento 3
      wsz=$REPO_BYTES
      finish_row "$round" memento walarchive1 "$DAY_WAL" "$wsz" $((wsz - ${size_after[memento.prev]}))
      size_after[memento.prev]=$wsz # backup3's "added" is then the backup's own; the day stored both
    fi
    for t in "${order[@]}"; do
      measure "$round" "$t" backup3 "$DAY_BYTES" "$(backup_cmd "$t" 3)" "$LIVE"
      repo_bytes "$t" 3
      size_after[$t]=$REPO_BYTES
      finish_row "$round" "$t" backup3 "$DAY_BYTES" "${size_after[$t]}" $((size_after[$t] - ${size_after[$t.prev]}))
    done

    for t in "${order[@]}"; do
      target=$BENCH_DIR/restore/$t
      rm -rf "$BENCH_DIR/restore" && mkdir -p "$target"
      measure "$round" "$t" restore "$DAY_BYTES" "$(restore_cmd "$t" "$target")" "$(repo_of "$t")"
      note=-
      if [ "$M_RC" = 0 ] && [ "$round" = 1 ]; then
        # Correctness first: a fast restore of wrong bytes is no result.
        src=$LIVE dst=$(restored_root "$t" "$target")
        [ "$t" = memento ] && [ $datadir = 1 ] && src=$LIVE/spaces dst=$dst/spaces
        if ! diff -rq "$src" "$dst" >"$LOGS/r$round-$t-restore.diff" 2>&1; then
          M_RC=99
          log "  $t restore: restored tree differs from the source: $(head -n 3 "$LOGS/r$round-$t-restore.diff")"
          M_LOG=$LOGS/r$round-$t-restore.diff
        else
          note="diff -r against the source: identical"
        fi
      fi
      finish_row "$round" "$t" restore "$DAY_BYTES" - - - "$note"
    done
    rm -rf "$BENCH_DIR/restore"

    # FUSE: per kind of file (data dirs: a WAL segment, the warm page file,
    # a cold segment; gosrc: the largest file), every tool in turn.
    mount_kinds
    for ((k = 0; k < ${#MOUNT_OPS[@]}; k++)); do
      largest_rel=${MOUNT_RELS[k]}
      for t in "${order[@]}"; do
        case $t in
          memento) [ $HAS_MOUNT = 1 ] && mount_read "$round" memento "${MOUNT_OPS[k]}" ;;
          restic) [ $RESTIC_MOUNT = 1 ] && mount_read "$round" restic "${MOUNT_OPS[k]}" ;;
        esac
      done
    done

    if [ $datadir = 1 ] && [[ " ${TOOLS[*]} " == *" memento "* ]]; then
      r=$(repo_of memento)
      if [ $HAS_VERIFY = 1 ]; then
        if "$MEMENTO" help verify 2>&1 | grep -q -- '--all \[--latest\]'; then
          c="$(q "$MEMENTO" verify --repo "$r" --all --latest --level L2) && " # the newest of every space, one command
        else
          c=
          for s in "${SPACES[@]}"; do c+="$(q "$MEMENTO" verify --repo "$r" --space "$s" --latest --level L2) && "; done
        fi
        measure "$round" memento verify "$DAY_BYTES" "${c}true" "$r"
        finish_row "$round" memento verify "$DAY_BYTES"
      fi
      if ! grep -q "	memento	pitr	skip" "$RESULTS"; then
        seq=$(pitr_seq)
        target=$BENCH_DIR/restore/pitr
        rm -rf "$BENCH_DIR/restore" && mkdir -p "$target"
        pb=$(sum_sizes "$LIVE/spaces/${SPACES[0]}")
        if [ -z "$seq" ]; then
          skip_row memento pitr "could not read the day's WAL range from engram-sim mutate's output"
        else
          measure "$round" memento pitr "$pb" "$(q "$MEMENTO" restore --repo "$r" --space "${SPACES[0]}" --to-seq "$seq" --target "$target" --no-progress)" "$r"
          finish_row "$round" memento pitr "$pb" - - - "space ${SPACES[0]} to seq $seq (mid-day)"
        fi
        rm -rf "$BENCH_DIR/restore"
      fi
    fi
    unset size_after
  done

  # S3 (MinIO): backup straight to MinIO (memento vs restic) and replication
  # local -> MinIO (memento vs a plain parallel upload), on the first data-dir
  # profile only: scripts/bench/s3.sh, the profile's rows file.
  if [ "$PROFILE" = "$FIRST_DATADIR" ]; then
    if [ "${BENCH_S3:-1}" = 1 ] && [[ " ${TOOLS[*]} " == *" memento "* ]]; then
      ROOT=$ROOT BENCH_DIR=$BENCH_DIR BENCH_RUNS=$BENCH_RUNS BENCH_TOOLS="${TOOLS[*]}" MEMENTO=$MEMENTO ORIG=$ORIG \
        DATA_BYTES=$DATA_BYTES LOGS=$LOGS RESULTS=$RESULTS "$HERE/s3.sh" || FAILED=$((FAILED + 1))
    else
      skip_row memento s3backup1 "BENCH_S3=0 or memento not in BENCH_TOOLS"
    fi
  fi

  {
    for v in PROFILE KIND DATASET_CMD GEN_LINE DATA_BYTES DATA_FILES WAL_SEGS DAY_BYTES DAY_WAL DAY_NEW; do printf '%s=%q\n' "$v" "${!v}"; done
    printf 'SPACES_LIST=%q\n' "${SPACES[*]}"
    printf 'P_LOAD_START=%q\nP_LOAD_END=%q\n' "$p_load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'P_ELAPSED=%q\n' "$(awk -v a="$p_start" -v b="$(now)" 'BEGIN {printf "%.0f", b-a}')"
    printf 'P_LOGS=%q\nP_RESULTS=%q\n' "$LOGS" "$RESULTS"
  } >"$BENCH_DIR/profile-$PROFILE.env"
  PROFILES_RUN+=("$PROFILE")
}

PROFILES_RUN=()
for p in $BENCH_PROFILES; do
  run_profile "$p"
done
rm -rf "$ORIG" "$LIVE"
LOGS=$LOGS_ROOT/common
mkdir -p "$LOGS"
RESULTS=$COMMON_RESULTS

# The embeddings file through each mount, per round, tools interleaved.
if [ $HAS_EMB = 1 ]; then
  for ((round = 1; round <= BENCH_RUNS; round++)); do
    order=()
    for ((i = 0; i < ${#TOOLS[@]}; i++)); do order+=("${TOOLS[(i + round - 1) % ${#TOOLS[@]}]}"); done
    emb_round "$round"
  done
fi

# ---------------------------------------------------------------- 100 MB of new WAL, PITR over 1,000 segments
# A dedicated small data dir with 64 KiB WAL segments: a full backup and a WAL
# archive, then ten times the WAL appended (about 100 MB, some 1,600 new
# segments). Timed: archiving that new WAL (issue 4: 100 MB under 2 s), and
# recovery to its last entry, which replays all of it on top of the snapshot.
if [ "${BENCH_PITR100:-1}" != 1 ]; then
  skip_row memento walarchive100 "BENCH_PITR100=0"
  skip_row memento pitr1000 "BENCH_PITR100=0"
elif [[ " ${TOOLS[*]} " == *" memento "* ]] && [ $HAS_WAL_ARCHIVE = 1 ]; then
  log "WAL archive of ~100 MB new WAL; PITR over ~1,600 archived segments"
  P=$BENCH_DIR/pitr
  mkdir -p "$P"
  (
    set -e
    "$SIM" generate --dir "$P/data" --size 24M --spaces 1 --segment-size 64KiB --seed 7
    "$MEMENTO" init --repo "$P/repo"
    "$MEMENTO" backup --repo "$P/repo" --data-dir "$P/data" --all --no-progress
    "$MEMENTO" wal archive --repo "$P/repo" --data-dir "$P/data" --all
  ) >"$LOGS/pitr-setup.log" 2>&1
  if [ $? -ne 0 ]; then
    M_RC=1 M_WALL=0 M_RSS=0 M_CPU=0 M_LOG=$LOGS/pitr-setup.log
    log "  memento: setup of the WAL/PITR scenario failed: $(tail -n 3 "$M_LOG")"
    finish_row 1 memento walarchive100 0
  else
    psp=$(ls "$P/data/spaces")
    w0=$(sum_sizes "$P/data/spaces/$psp/wal")
    "$SIM" mutate --dir "$P/data" --seed 8 --wal-share 10 >"$LOGS/pitr-mutate.log" 2>&1 || die "engram-sim mutate (PITR scenario) failed"
    wnew=$(($(sum_sizes "$P/data/spaces/$psp/wal") - w0))
    measure 1 memento walarchive100 "$wnew" "$(q "$MEMENTO" wal archive --repo "$P/repo" --data-dir "$P/data" --all)" "$P/data"
    finish_row 1 memento walarchive100 "$wnew" - - - "engram-sim mutate --wal-share 10 on a 24M data dir with 64 KiB segments"
    if [ "$M_RC" = 0 ] && grep -qs "	memento	pitr	ok" "$BENCH_DIR"/results-*.tsv; then
      last=$(sed -n "s/^$psp: .*seq [0-9]*\.\.\([0-9]*\).*/\1/p" "$LOGS/pitr-mutate.log")
      first=$(sed -n "s/^$psp: .*seq \([0-9]*\)\.\.[0-9]*.*/\1/p" "$LOGS/pitr-mutate.log")
      segs=$(find "$P/data/spaces/$psp/wal" -name 'wal-*.log' | wc -l)
      pbytes=$(sum_sizes "$P/data/spaces/$psp")
      for ((round = 1; round <= BENCH_RUNS; round++)); do
        rm -rf "$P/restore"
        measure "$round" memento pitr1000 "$pbytes" "$(q "$MEMENTO" restore --repo "$P/repo" --space "$psp" --to-seq "$last" --target "$P/restore" --no-progress)" "$P/repo"
        finish_row "$round" memento pitr1000 "$pbytes" - - - "$segs segments in the WAL; seq $first..$last ($(awk -v b="$wnew" 'BEGIN {printf "%.0f", b / 65536}') segments) replayed on the snapshot"
      done
    else
      skip_row memento pitr1000 "needs memento restore --to-seq (the PITR row was skipped or failed)"
    fi
  fi
else
  skip_row memento walarchive100 "memento wal archive is not in this build"
  skip_row memento pitr1000 "needs memento wal archive and restore --to-seq"
fi

# ---------------------------------------------------------------- WAL replay
if [ "$BENCH_GO" = 1 ]; then
  log "WAL replay: go test -run '^\$' -bench 'Replay\$' -benchtime 5x ./walreplay/"
  if go test -run '^$' -bench 'Replay$' -benchtime 5x ./walreplay/ >"$LOGS/walreplay-bench.log" 2>&1; then
    metric() { awk -v b="^BenchmarkReplay/$1" -v u="$2" '$0 ~ b {for (i = 1; i < NF; i++) if ($(i+1) == u) print $i}' "$LOGS/walreplay-bench.log" | head -n 1; }
    ceps=$(metric copy entries/s) mbs=$(metric zerocopy MB/s) eps=$(metric zerocopy entries/s)
    # The restore path (PITR) replays into a zero-copy state: that is the figure.
    if [ -n "$eps" ]; then
      record 1 memento walreplay ok - - - - - "$eps" "go test -bench 'Replay\$' ./walreplay/: 50,000 768-dim entries; zero-copy mode (used by PITR restore) $mbs MB/s; copy mode ${ceps:-?} entries/s"
    else
      skip_row memento walreplay "BenchmarkReplay/zerocopy reported no entries/s"
    fi
  else
    skip_row memento walreplay "go test -bench Replay ./walreplay/ failed (see $LOGS/walreplay-bench.log)"
  fi
else
  skip_row memento walreplay "BENCH_GO=0"
fi

# ---------------------------------------------------------------- report
ELAPSED=$(awk -v a="$START" -v b="$(now)" 'BEGIN {printf "%.0f", b-a}')
cmdline="make bench"
[ -n "${MAKELEVEL:-}" ] || cmdline="./scripts/bench.sh"
export LOAD_START LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
export ROOT BENCH_DIR BENCH_SIZE BENCH_SPACES BENCH_SEED BENCH_RUNS BENCH_CACHE BENCH_BORG_COMPRESSION
export ELAPSED MEMENTO SIM COMMON_RESULTS FIRST_DATADIR GOSRC
export PROFILES_LIST="${PROFILES_RUN[*]}" # (arrays cannot be exported)
export CMDLINE="BENCH_PROFILES=\"$BENCH_PROFILES\" BENCH_SIZE=$BENCH_SIZE BENCH_RUNS=$BENCH_RUNS BENCH_CACHE=$BENCH_CACHE $cmdline"
mkdir -p "$(dirname "$BENCH_OUT")"
"$HERE/report.sh" >"$BENCH_OUT" || die "report failed"
"$HERE/report.sh" terminal
log "wrote $BENCH_OUT (raw rows: $BENCH_DIR/results-*.tsv, logs: $LOGS_ROOT) in ${ELAPSED}s"
if [ "$FAILED" -gt 0 ]; then
  log "$FAILED operation(s) FAILED: see the table and $LOGS"
  exit 1
fi
exit 0
