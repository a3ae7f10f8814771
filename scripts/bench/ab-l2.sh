#!/bin/bash
# Interleaved A/B of `verify --all --latest --level L2` with two memento
# binaries on existing repositories (e.g. /work/wt/data/r-def and r-wh, a
# first backup of a 1 GiB data dir with `backup --data-dir D --all`): the
# page cache dropped before every run, each run with a fresh copy of the
# repository's cache directory (CACHE_<name>, or an empty one). Prints one
# line per run: round, repository, binary, wall s, user s, sys s, max RSS
# KiB, 1-minute load; then the medians of wall and CPU (user + sys) s.
# The binaries' order alternates from round to round; use an even ROUNDS.
#
#   OLD=/work/wt/profiles/memento-main9 NEW=bin/memento \
#   REPOS="def=/tmp/r-def wh=/tmp/r-wh" CACHE_def=/tmp/cache-def \
#   CACHE_wh=/tmp/cache-wh W=/tmp/ab-l2 ROUNDS=3 scripts/bench/ab-l2.sh
#
# MEMENTO_PASSWORD must be set. verify takes a shared lock in the
# repository (a file in locks/, removed afterwards).
set -u
: "${OLD:?} ${NEW:?} ${REPOS:?} ${W:?} ${MEMENTO_PASSWORD:?}"
ROUNDS=${ROUNDS:-3}
mkdir -p "$W"
out=$W/ab-l2.tsv
: >"$out"
for ((round = 1; round <= ROUNDS; round++)); do
  for rp in $REPOS; do
    name=${rp%%=*} repo=${rp#*=}
    cache=CACHE_$name
    # The order alternates per round: the second verify of a round runs
    # ~0.1 s slower whichever binary it is (docs/benchmarks.md, "Issue 18,
    # session 18 (2026-12-07)"), so a fixed order biases the medians.
    order="old new"
    ((round % 2 == 0)) && order="new old"
    for bin in $order; do
      b=$OLD
      [ "$bin" = new ] && b=$NEW
      rm -rf "$W/cache" && mkdir -p "$W/cache"
      [ -n "${!cache:-}" ] && cp -a "${!cache}/." "$W/cache/"
      sync
      echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
      l=$(cut -d' ' -f1 /proc/loadavg)
      MEMENTO_CACHE_DIR=$W/cache /usr/bin/time -o "$W/t.txt" -f '%e %U %S %M' \
        "$b" verify --repo "$repo" --all --latest --level L2 >/dev/null 2>"$W/err.txt" ||
        echo "FAILED: $name $bin: $(tail -n 2 "$W/err.txt")" >&2
      printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$bin" "$(tr ' ' '\t' <"$W/t.txt")" "$l" | tee -a "$out"
    done
  done
done
echo "medians (wall s, CPU s = user + sys):"
awk -F'\t' '{k=$2" "$3; w[k]=w[k]" "$4; c[k]=c[k]" "($5+$6)}
  END {for (k in w) {print k, med(w[k]), med(c[k])}}
  function med(s,  a, n, i, j, t) {n=split(s, a, " "); for (i=1;i<=n;i++) for (j=i+1;j<=n;j++) if (a[j]<a[i]) {t=a[i];a[i]=a[j];a[j]=t}; return n%2 ? a[(n+1)/2] : (a[n/2]+a[n/2+1])/2}' "$out" | sort
