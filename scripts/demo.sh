#!/usr/bin/env bash
# The main job on a built-in demo: generate an Engram data dir, back it up while
# it keeps writing, archive its WAL, lose a space by accident, restore it to the
# nanosecond before, and prove the result against the simulator's ground truth.
# Usage: make demo   (or scripts/demo.sh after make build; DEMO_DIR=... to keep files)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
M="$BIN/memento"
SIM="$BIN/engram-sim"
[ -x "$M" ] && [ -x "$SIM" ] || { echo "demo: run 'make build' first" >&2; exit 2; }

D=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/memento-demo.XXXXXX")}
mkdir -p "$D"
export MEMENTO_REPOSITORY="$D/repo" MEMENTO_PASSWORD=demo-password MEMENTO_CACHE_DIR="$D/cache"
DATA="$D/engram"
SPACE=space-a
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
rm -rf "$DATA" "$MEMENTO_REPOSITORY" "$MEMENTO_CACHE_DIR" "$D/truth.jsonl"

step "1. generate an Engram data dir (2 spaces, 96 MiB, 768-dim embeddings)"
"$SIM" generate --dir "$DATA" --size 96M --spaces 2 --seed 42 --segment-size 4MiB
du -sh "$DATA"

step "2. create a repository and take a full backup of every space"
"$M" init
"$M" backup --data-dir "$DATA" --all

step "3. the database keeps writing; memento archives its WAL"
"$SIM" run --dir "$DATA" --entries 6000 --rate 3000 --seed 43 --truth "$D/truth.jsonl" --truth-every 500 >/dev/null
"$M" wal archive --data-dir "$DATA" --all
"$M" pitr ranges --space "$SPACE"

# Pick an instant in the middle of the new writes, with its ground-truth digest.
line=$(grep "\"space\":\"$SPACE\"" "$D/truth.jsonl" | sed -n '5p')
[ -n "$line" ] || { echo "demo: no ground truth recorded" >&2; exit 1; }
T=$(sed -E 's/.*"timestamp_ns":([0-9]+).*/\1/' <<<"$line")
SEQ=$(sed -E 's/.*"sequence":([0-9]+).*/\1/' <<<"$line")
WANT=$(sed -E 's/.*"digest":"([0-9a-f]+)".*/\1/' <<<"$line")
echo "target instant: $T (ns), the state after entry $SEQ"

step "4. accident: the space's directory is deleted"
rm -rf "${DATA:?}/spaces/$SPACE"
ls "$DATA/spaces"

step "5. restore $SPACE to that nanosecond"
"$M" restore --space "$SPACE" --at "$T" --target "$DATA"

step "6. verify: replay the restored WAL and compare with the ground truth"
GOT=$("$SIM" truth --dir "$DATA" --space "$SPACE" | sed -E 's/.*"digest":"([0-9a-f]+)".*/\1/')
echo "expected state digest: $WANT"
echo "restored state digest: $GOT"
if "$M" help verify >/dev/null 2>&1; then
  "$M" verify --space "$SPACE" --latest --level L2
fi
if [ "$GOT" != "$WANT" ]; then
  echo "DEMO FAILED: the restored state does not match the ground truth" >&2
  exit 1
fi
printf '\n\033[1mDEMO PASSED\033[0m: %s recovered to %s, state digest matches ground truth.\nFiles are in %s\n' "$SPACE" "$T" "$D"
