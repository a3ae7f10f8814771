#!/bin/bash
# Writes the data sets of docs/benchmarks.md, "Issue 18, session 22: data no
# benchmark was tuned on": kinds of plain-path input the other benchmarks do
# not cover, each under OUT (default /work/wt/data) as u-NAME, deterministic
# (pseudo-random bytes are AES-CTR of zeros under a fixed pass phrase).
#
#   SRC=/work/wt/data OUT=/work/wt/data scripts/bench/unseen-data.sh [NAME...]
#
# NAME is one of big sparse incomp tiny empty dup links (default: all).
# SRC must hold gosrc, pystd and usrlib (docs/benchmarks.md's data dirs).
#   u-big      one 2 GiB file: tars of gosrc, usrlib and pystd with 2 x 200 MiB of random bytes between them
#   u-sparse   one 4 GiB sparse image: 150 extents of 2 MiB (from u-big) and 512 4 KiB blocks (random) at scattered offsets
#   u-incomp   incompressible files: 3 x 100 MiB random, 200 x 512 KiB random, gosrc as tar.gz and tar.zst (-19), usrlib as tar.zst (-3)
#   u-tiny     100,000 files of 0-200 bytes in a tree 2-8 directories deep
#   u-empty    20,000 empty files and 5,000 empty directories
#   u-dup      gosrc copied 5 times, and a 160 MiB file of repeated blocks (aligned and shifted)
#   u-links    gosrc with hard links (within and across directories) and symlinks (relative, absolute, to directories, dangling, loops)
set -eu
SRC=${SRC:-/work/wt/data}
OUT=${OUT:-/work/wt/data}
read -ra names <<<"${*:-big sparse incomp tiny empty dup links}"
# prng SEED BYTES writes BYTES pseudo-random bytes determined by SEED.
prng() { openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c "$2"; }
mib=$((1 << 20))
for n in "${names[@]}"; do
  d=$OUT/u-$n
  rm -rf "$d"
  mkdir -p "$d"
  case $n in
    big)
      { tar -C "$SRC" -cf - gosrc; prng big1 $((200 * mib)); tar -C "$SRC" -cf - usrlib; prng big2 $((200 * mib)); tar -C "$SRC" -cf - pystd; } |
        head -c $((2048 * mib)) >"$d/big.bin" ;;
    sparse)
      [ -f "$OUT/u-big/big.bin" ] || { echo "u-sparse needs u-big first" >&2; exit 1; }
      truncate -s 4G "$d/disk.img"
      for ((i = 0; i < 150; i++)); do
        # slot i*1237 mod 2048 of 2 MiB: 150 distinct slots spread over 4 GiB
        dd if="$OUT/u-big/big.bin" of="$d/disk.img" bs=2M skip=$((i * 13 % 1024)) seek=$((i * 1237 % 2048)) count=1 conv=notrunc status=none
      done
      prng sparse $((512 * 4096)) >"$d/.blocks"
      for ((i = 0; i < 512; i++)); do
        # 4 KiB blocks at odd 4 KiB offsets (never inside an extent, which are 2 MiB aligned and even)
        dd if="$d/.blocks" of="$d/disk.img" bs=4096 skip="$i" seek=$(((i * 104729 % 524288) * 2 + 1)) count=1 conv=notrunc status=none
      done
      rm "$d/.blocks" ;;
    incomp)
      for i in 1 2 3; do prng "incomp$i" $((100 * mib)) >"$d/random$i.bin"; done
      mkdir "$d/media"
      for ((i = 0; i < 200; i++)); do prng "media$i" $((512 << 10)) >"$d/media/img$i.jpg"; done
      tar -C "$SRC" -cf - gosrc | gzip -6 >"$d/gosrc.tar.gz"
      tar -C "$SRC" -cf - gosrc | zstd -q -19 -T2 >"$d/gosrc.tar.zst"
      tar -C "$SRC" -cf - usrlib | zstd -q -3 -T2 >"$d/usrlib.tar.zst" ;;
    tiny)
      python3 - "$d" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(22)
words = b"the of and to in is was for on that with as by at from it engram memento backup restore".split()
for i in range(100000):
    depth = 2 + i % 7
    parts = [f"d{(i // (7 * 10 ** k)) % 10}" for k in range(depth)]
    p = os.path.join(root, *parts)
    os.makedirs(p, exist_ok=True)
    n = rng.randrange(0, 201)
    data = b" ".join(rng.choice(words) for _ in range(n))[:n] if i % 3 else rng.randbytes(n)
    with open(os.path.join(p, f"f{i}.txt"), "wb") as f:
        f.write(data)
PY
      ;;
    empty)
      python3 - "$d" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(5000):
    os.makedirs(os.path.join(root, f"a{i % 50}", f"b{i}"))
for i in range(20000):
    open(os.path.join(root, f"a{i % 50}", f"b{i % 5000 if i % 4 else 0}" if i % 2 else "", f"e{i}"), "wb").close()
PY
      ;;
    dup)
      for i in 1 2 3 4 5; do cp -a "$SRC/gosrc" "$d/copy$i"; done
      prng dupblock $mib >"$d/.block"
      prng dupsmall $((64 << 10)) >"$d/.small"
      { for ((i = 0; i < 100; i++)); do cat "$d/.block"; done
        for ((i = 0; i < 960; i++)); do head -c $((i % 61 + 1)) "$d/.block"; cat "$d/.small"; done; } >"$d/repeated.bin"
      rm "$d/.block" "$d/.small" ;;
    links)
      cp -a "$SRC/gosrc" "$d/tree"
      cp -al "$d/tree/net" "$d/net-hardlinked"
      i=0
      while IFS= read -r f; do
        i=$((i + 1))
        case $((i % 10)) in
          0) ln "$f" "$f.hl" ;;
          5) ln -s "$(basename "$f")" "$f.sl" ;;
          7) ln -s "$f" "$f.abs" ;;
        esac
      done < <(find "$d/tree/go" -type f)
      ln -s go "$d/tree/go-dir-link"
      ln -s nowhere/at/all "$d/tree/dangling"
      ln -s loop-b "$d/tree/loop-a"
      ln -s loop-a "$d/tree/loop-b"
      ln -s go-dir-link/build "$d/tree/chain" ;;
    *) echo "unknown data set $n" >&2; exit 2 ;;
  esac
  echo "u-$n: $(du -sh --apparent-size "$d" | cut -f1) apparent, $(du -sh "$d" | cut -f1) on disk, $(find "$d" | wc -l) entries" >&2
done
