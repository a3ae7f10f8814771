#!/bin/bash
# Interleaved A/B of the restore of a plain path snapshot, each tool restoring
# the repository it wrote itself (OLD and NEW memento binaries of different
# repository formats, e.g. format 5 against 6 with grouped small files, and
# restic 0.14): the repositories are made once per data set (a first backup
# of DIR), then each round restores every one into a fresh target with the
# page cache dropped, the tool order rotated per round. memento restores with
# its cache directory as the backup left it (the index; no data is cached).
# After the first round's runs the restored files' sha256 are compared with
# the source, outside the timing. Prints one line per run: round, data, tool,
# wall s, CPU s, user s, sys s, 1-minute load, 0 (the repository-bytes column
# of ab-first.sh, for /tmp/abstat.py), peak RSS KiB.
#
#   OLD=/work/wt/profiles/memento-main20 NEW=bin/memento W=/tmp/ab-rest \
#   DATA="pystd=/work/wt/data/pystd gosrc=/work/wt/data/gosrc" ROUNDS=5 \
#   MEMENTO_PASSWORD=benchpw RESTIC_PASSWORD=benchpw scripts/bench/ab-restore-own.sh
set -u
: "${OLD:?} ${NEW:?} ${DATA:?} ${W:?} ${MEMENTO_PASSWORD:?} ${RESTIC_PASSWORD:?}"
ROUNDS=${ROUNDS:-3}
read -ra tools <<<"${TOOLS:-old new restic}"
mkdir -p "$W"
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
for pair in $DATA; do
  name=${pair%%=*} dir=${pair#*=}
  sums "$dir" >"$W/want-$name.sha"
  for tool in "${tools[@]}"; do
    r=$W/repo-$name-$tool
    rm -rf "$r" "$W/cache-$name-$tool"
    case $tool in
      restic)
        RESTIC_CACHE_DIR=$W/cache-$name-$tool restic -r "$r" init --repository-version 2 >/dev/null 2>&1
        RESTIC_CACHE_DIR=$W/cache-$name-$tool restic -r "$r" backup --compression auto -q "$dir" >/dev/null ;;
      *)
        bin=$OLD
        [ "$tool" = new ] && bin=$NEW
        "$bin" init --repo "$r" >/dev/null
        MEMENTO_CACHE_DIR=$W/cache-$name-$tool "$bin" backup --repo "$r" --no-progress "$dir" >/dev/null ;;
    esac
  done
done
for ((round = 0; round < ROUNDS; round++)); do
  for pair in $DATA; do
    name=${pair%%=*} dir=${pair#*=}
    for ((k = 0; k < ${#tools[@]}; k++)); do
      tool=${tools[(k + round) % ${#tools[@]}]}
      r=$W/repo-$name-$tool t=$W/target
      rm -rf "$t"
      case $tool in
        restic) cmd=(env RESTIC_CACHE_DIR=$W/cache-$name-$tool restic -r "$r" restore latest --target "$t" -q) ;;
        *)
          bin=$OLD
          [ "$tool" = new ] && bin=$NEW
          cmd=(env MEMENTO_CACHE_DIR=$W/cache-$name-$tool "$bin" restore --repo "$r" latest --target "$t" --no-progress) ;;
      esac
      sync
      echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
      load=$(cut -d' ' -f1 /proc/loadavg)
      /usr/bin/time -f '%e %U %S %M' -o "$W/time" "${cmd[@]}" >/dev/null 2>"$W/err" || echo "FAILED: $tool $name: $(tail -n 2 "$W/err")" >&2
      if ((round == 0)) && ! sums "$t/${dir#/}" | cmp -s - "$W/want-$name.sha"; then
        echo "MISMATCH: $name $tool: restored files differ from the source" >&2
      fi
      read -r wall u s rss <"$W/time"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t0\t%s\n' $((round + 1)) "$name" "$tool" "$wall" \
        "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$u" "$s" "$load" "$rss"
    done
  done
done
