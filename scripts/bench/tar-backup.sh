#!/usr/bin/env bash
# tar-backup.sh SRC OUT.tar.zst: the naive baseline of the benchmark.
#
# One pass over the data does what an operator's cron line would:
#   tar -cf - -C SRC . | tee FIFO | zstd -3 -T2 > OUT.tar.zst   (archive)
#   sha256sum < FIFO > OUT.tar.zst.sha256                       (integrity)
# The checksum runs concurrently with the compression on the same stream
# (tee into a FIFO), which is the cheapest honest way to get both; the run
# ends when tar, zstd and sha256sum have all finished.
set -euo pipefail
src=$1 out=$2
fifo=$(mktemp -u "${TMPDIR:-/tmp}/tar-backup.XXXXXX")
mkfifo "$fifo"
trap 'rm -f "$fifo"' EXIT
sha256sum <"$fifo" >"$out.sha256" &
sum=$!
tar -cf - -C "$src" . | tee "$fifo" | zstd -q -3 -T2 -c >"$out"
wait "$sum"
