#!/bin/bash
# Interleaved first backups of one data dir by several memento binaries
# (issue 18, session 23: the bisection of def's first backup): ab-first.sh
# with every binary of BINS as a tool of its own, the order rotated per
# round, each into a fresh repository and cache, the page cache dropped
# before each run. Prints ab-first.sh's lines (round, data, tool, wall s,
# CPU s, user s, system s, load, repository bytes, peak RSS KiB).
#
#   BINS="main=/tmp/memento-main new=bin/memento" DATA=/work/wt/data/def \
#   ROUNDS=6 W=/tmp/abm MEMENTO_PASSWORD=benchpw scripts/bench/ab-multi.sh
#
# DATA is a data dir (backup --data-dir DATA --all) or any other path.
set -u
: "${BINS:?} ${DATA:?} ${W:?} ${MEMENTO_PASSWORD:?}"
TOOLS=$BINS DATA="$(basename "$DATA")=$DATA" exec "$(dirname "$0")/ab-first.sh"
