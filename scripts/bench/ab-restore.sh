#!/bin/bash
# Interleaved A/B of a data dir's full restore (`restore --all --latest`)
# with two memento binaries on existing repositories (e.g. copies of
# /work/wt/data/r-def and r-wh, a first backup of a 1 GiB data dir with
# `backup --data-dir D --all`): the page cache dropped before every run,
# each run into a fresh target with a fresh copy of the repository's cache
# directory (CACHE_<name>, or an empty one). After each run every restored
# file's sha256 is compared with SRC_<name> (the data dir backed up), outside
# the timing (the .memento directory aside: a restore writes its own
# identity there). Prints one line per run: round, repository, binary, wall s,
# user s, sys s, max RSS KiB, 1-minute load; then the medians of wall and
# CPU (user + sys) s.
#
#   OLD=/work/wt/profiles/memento-main11 NEW=bin/memento \
#   REPOS="def=/tmp/r-def wh=/tmp/r-wh" CACHE_def=/work/wt/data/cache-def \
#   CACHE_wh=/work/wt/data/cache-wh SRC_def=/work/wt/data/def SRC_wh=/work/wt/data/wh \
#   W=/tmp/ab-restore ROUNDS=3 scripts/bench/ab-restore.sh
#
# A repository of a plain path snapshot: ARGS_<name>="latest" (the
# restore's arguments before --target; default "--all --latest") and
# SUB_<name>=work/wt/data/gosrc (where the source's files land under the
# target, compared with SRC_<name>).
#
# MEMENTO_PASSWORD must be set. restore takes a shared lock in the
# repository (a file in locks/, removed afterwards): use copies.
set -u
: "${OLD:?} ${NEW:?} ${REPOS:?} ${W:?} ${MEMENTO_PASSWORD:?}"
ROUNDS=${ROUNDS:-3}
mkdir -p "$W"
out=$W/ab-restore.tsv
: >"$out"
sums() { (cd "$1" && find . -path ./.memento -prune -o -type f -print0 | sort -z | xargs -0 sha256sum); } # .memento: the identity, not data
for rp in $REPOS; do
  name=${rp%%=*}
  src=SRC_$name
  [ -n "${!src:-}" ] && sums "${!src}" >"$W/want-$name.sha"
done
for ((round = 1; round <= ROUNDS; round++)); do
  for rp in $REPOS; do
    name=${rp%%=*} repo=${rp#*=}
    cache=CACHE_$name args=ARGS_$name sub=SUB_$name
    read -ra rargs <<<"${!args:---all --latest}"
    order="old new"
    ((round % 2 == 0)) && order="new old" # the second run of a round is not always the same binary
    for bin in $order; do
      b=$OLD
      [ $bin = new ] && b=$NEW
      rm -rf "$W/cache" "$W/rt" && mkdir -p "$W/cache"
      [ -n "${!cache:-}" ] && cp -a "${!cache}/." "$W/cache/"
      sync
      echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
      l=$(cut -d' ' -f1 /proc/loadavg)
      MEMENTO_CACHE_DIR=$W/cache /usr/bin/time -o "$W/t.txt" -f '%e %U %S %M' \
        "$b" restore --repo "$repo" "${rargs[@]}" --target "$W/rt" --no-progress >/dev/null 2>"$W/err.txt" ||
        echo "FAILED: $name $bin: $(tail -n 2 "$W/err.txt")" >&2
      if [ -f "$W/want-$name.sha" ] && ! sums "$W/rt/${!sub:-}" | cmp -s - "$W/want-$name.sha"; then
        echo "MISMATCH: $name $bin: restored files differ from the source" >&2
      fi
      printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$bin" "$(tr ' ' '\t' <"$W/t.txt")" "$l" | tee -a "$out"
    done
  done
done
rm -rf "$W/rt" "$W/cache"
echo "medians (wall s, CPU s = user + sys, max RSS KiB):"
awk -F'\t' '{k=$2" "$3; w[k]=w[k]" "$4; c[k]=c[k]" "($5+$6); m[k]=m[k]" "$7}
  END {for (k in w) {print k, med(w[k]), med(c[k]), med(m[k])}}
  function med(s,  a, n, i, j, t) {n=split(s, a, " "); for (i=1;i<=n;i++) for (j=i+1;j<=n;j++) if (a[j]<a[i]) {t=a[i];a[i]=a[j];a[j]=t}; return n%2 ? a[(n+1)/2] : (a[n/2]+a[n/2+1])/2}' "$out" | sort
