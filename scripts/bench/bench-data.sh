#!/bin/bash
# Writes the data sets the A/B sections of docs/benchmarks.md name as
# /work/wt/data/NAME, deterministic where their source is (engram-sim's seeds,
# unseen-data.sh's pass phrases), under OUT (default /work/wt/data):
#
#   SIM=bin/engram-sim OUT=/work/wt/data scripts/bench/bench-data.sh [NAME...]
#
# NAME is one of def wh s16x s16d sp1 v1 gosrc pystd usrlib u-big u-sparse
# u-incomp u-tiny u-empty u-dup u-links (default: def wh s16x s16d gosrc pystd
# usrlib u-tiny u-dup, about 7 GiB and 5 minutes). gosrc, pystd and usrlib are
# copies of this machine's Go, Python and /usr/lib trees: their bytes depend
# on the machine (the sections say what they held when measured).
set -eu
SIM=${SIM:-bin/engram-sim}
OUT=${OUT:-/work/wt/data}
PY=${PY:-$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')}
read -ra names <<<"${*:-def wh s16x s16d gosrc pystd usrlib u-tiny u-dup}"
here=$(dirname "$0")
mkdir -p "$OUT"
gen() { # gen NAME ARGS...: engram-sim generate into OUT/NAME
  local d=$OUT/$1
  shift
  rm -rf "$d"
  "$SIM" generate --dir "$d" "$@" >/dev/null
}
for n in "${names[@]}"; do
  case $n in
    def) gen def --profile default --size 1G --spaces 3 --seed 1 ;;
    wh) gen wh --profile wal-heavy --size 1G --spaces 3 --seed 1 ;;
    s16x) gen s16x --size 1G --spaces 16 --dim 128 --segment-size 4MiB --mix store=90,update=5,delete=5 --seed 13 ;;
    s16d) gen s16d --profile default --size 1G --spaces 16 --seed 1 ;;
    sp1) gen sp1 --size 1G --spaces 1 --seed 11 ;;
    v1) gen v1 --profile default --size 1G --spaces 8 --dim 384 --segment-size 16MiB --seed 7 ;;
    gosrc) rm -rf "$OUT/gosrc" && cp -a "$(go env GOROOT)/src" "$OUT/gosrc" ;;
    pystd) rm -rf "$OUT/pystd" && mkdir -p "$OUT/pystd" && cp -a "$PY/." "$OUT/pystd/" ;;
    usrlib) rm -rf "$OUT/usrlib" && mkdir -p "$OUT/usrlib" && cp -a /usr/lib/x86_64-linux-gnu/. "$OUT/usrlib/" ;;
    u-*) o=$OUT && SRC=$o OUT=$o "$here/unseen-data.sh" "${n#u-}" ;;
    *) echo "bench-data.sh: unknown data set $n" >&2; exit 2 ;;
  esac
done
du -sh "${names[@]/#/$OUT/}"
