#!/usr/bin/env bash
# report.sh [terminal]: turns scripts/bench.sh's raw rows ($RESULTS) into
# docs/benchmarks.md (no argument) or the terminal summary ("terminal").
# Every figure is computed here from the raw rows, so the document and the
# terminal can never disagree. Environment: see the export lines of bench.sh.
set -uo pipefail
mode=${1:-doc}

# summarize FILE... prints one aggregated line per (tool, op) of the raw rows in FILEs:
# tool op status median_wall max_rss_kb bytes repo added extra runs note median_cpu min_wall max_wall
summarize() {
  awk -F'\t' '
    function lo(list,   a, n, i, m) { n = split(list, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0; return n ? m : "-" }
    function hi(list,   a, n, i, m) { n = split(list, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return n ? m : "-" }
    function median(list,   a, n, i, j, t) {
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j+1] = a[j]; a[j+1] = t }
      if (n == 0) return "-"
      return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
    }
    {
      k = $2 SUBSEP $3
      if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
      if ($4 == "ok") { ok[k]++; if ($5 != "-") walls[k] = walls[k] " " $5; if ($10 != "-") extras[k] = extras[k] " " $10; if ($12 != "-" && $12 != "") cpus[k] = cpus[k] " " $12 }
      else if ($4 == "fail") fail[k]++
      else skip[k] = 1
      if ($6 != "-" && $6 + 0 > rss[k] + 0) rss[k] = $6
      if ($7 != "-") bytes[k] = $7
      if ($8 != "-") repo[k] = $8
      if ($9 != "-") added[k] = $9
      if ($11 != "-") note[k] = $11
    }
    END {
      for (i = 1; i <= nk; i++) {
        k = keys[i]; split(k, p, SUBSEP)
        st = fail[k] ? "fail" : (ok[k] ? "ok" : "skip")
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p[1], p[2], st,
          (walls[k] == "" ? "-" : median(walls[k])), (rss[k] == "" ? "-" : rss[k]),
          (bytes[k] == "" ? "-" : bytes[k]), (repo[k] == "" ? "-" : repo[k]), (added[k] == "" ? "-" : added[k]),
          (extras[k] == "" ? "-" : median(extras[k])), ok[k] + fail[k], (note[k] == "" ? "-" : note[k]), (cpus[k] == "" ? "-" : median(cpus[k])),
          (walls[k] == "" ? "-" : lo(walls[k])), (walls[k] == "" ? "-" : hi(walls[k]))
      }
    }' "$@"
}

# load_profile PROFILE reads the figures bench.sh saved for the profile.
load_profile() {
  # shellcheck disable=SC1090
  . "$BENCH_DIR/profile-$1.env"
  SUMMARY=$(summarize "$P_RESULTS")
}
read -r -a PROFILES <<<"${PROFILES_LIST:-}"
borg_label="borg $(borg --version 2>/dev/null | awk '{print $2}') ($BENCH_BORG_COMPRESSION)"
restic_label="restic $(restic version 2>/dev/null | awk '{print $2}') (repo v2, auto)"

# table PART prints, from SUMMARY, the markdown table of the rows (PART
# rows) or the targets (PART targets).
table() {
  printf '%s\n' "$SUMMARY" | awk -F'\t' -v data="${DATA_BYTES:-0}" -v day="${DAY_BYTES:-0}" -v daywal="${DAY_WAL:-0}" -v daynew="${DAY_NEW:-0}" \
    -v restic_label="$restic_label" -v borg_label="$borg_label" -v mode="$mode" -v part="$1" '
    function mb(b) { return b / 1e6 }
    function mib(b) { return b / 1048576 }
    function fmt(x, d) { return (x == "-" || x == "") ? "-" : sprintf("%." d "f", x) }
    function verdict(ok) { return ok ? "PASS" : "MISS" }
    {
      k = $1 SUBSEP $2
      st[k] = $3; wall[k] = $4; rss[k] = $5; bytes[k] = $6; repo[k] = $7; added[k] = $8; extra[k] = $9; runs[k] = $10; note[k] = $11; cpu[k] = $12; wlo[k] = $13; whi[k] = $14
      have[$1] = 1
    }
    END {
      nops = split("backup1 backup2 backup2kc walarchive0 walarchive1 backup3 reposize restore mountwal mountwarm mountcold mountread mountemb restoreemb verify pitr walarchive100 pitr1000 walreplay s3backup1 s3replicate", ops, " ")
      label["backup1"] = "first backup (fresh repository)"
      label["backup2"] = "second backup, nothing changed"
      label["backup2kc"] = "second backup, nothing changed, key cache on (MEMENTO_KEY_CACHE=15m; ÷ restic: its second backup)"
      label["walarchive0"] = "WAL archive, all WAL (after the first backup)"
      label["walarchive1"] = "WAL archive, the day'"'"'s WAL"
      label["backup3"] = "backup after a day of activity"
      label["restore"] = "full restore of the latest backup"
      label["reposize"] = "repository size after the day (÷ restic: size)"
      label["mountread"] = "FUSE mount: sequential read of the largest file"
      label["mountwal"] = "FUSE mount: sequential read of a WAL segment (the largest)"
      label["mountwarm"] = "FUSE mount: sequential read of a warm page file (the largest)"
      label["mountcold"] = "FUSE mount: sequential read of a cold segment (the largest)"
      label["mountemb"] = "FUSE mount: sequential read of one file of float32 embeddings"
      label["restoreemb"] = "restore of that one file of embeddings"
      label["verify"] = "verify --level L2, latest snapshot of every space"
      label["pitr"] = "PITR restore --to-seq (one space, mid-day)"
      label["walarchive100"] = "WAL archive of ~100 MB of new WAL (64 KiB segments)"
      label["pitr1000"] = "PITR over 1,000+ archived 64 KiB segments"
      label["walreplay"] = "WAL replay, zero-copy as in PITR (Go benchmark)"
      label["s3backup1"] = "first backup straight to MinIO (fresh bucket)"
      label["s3replicate"] = "replicate the local repository to MinIO (fresh bucket)"
      ntools = split("memento restic borg tar s3put", tools, " ")
      tname["memento"] = "memento"; tname["restic"] = restic_label; tname["borg"] = borg_label
      tname["tar"] = "tar \\| zstd -3 -T2 + sha256sum"
      tname["s3put"] = "plain parallel upload (s3put, 8 at once)"
      if (part == "rows") {
      print "| operation | tool | median s (min-max) | CPU s | ÷ restic, wall | ÷ restic, CPU | MB/s | peak RSS MiB | repository MiB | added MiB | runs |"
      print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for (i = 1; i <= nops; i++) {
        op = ops[i]
        for (j = 1; j <= ntools; j++) {
          t = tools[j]; k = t SUBSEP op
          if (op == "reposize") {
            # The repository after the day'"'"'s backup, against restic'"'"'s.
            k = t SUBSEP "backup3"; rk = "restic" SUBSEP "backup3"
            if (!(k in st) || st[k] != "ok" || repo[k] == "-") continue
            ratio = (rk in st && st[rk] == "ok" && repo[rk] > 0) ? sprintf("%.2f", repo[k] / repo[rk]) : "-"
            printf "| %s | %s | - | - | %s | - | - | - | %s | - | %d |\n", label[op], tname[t], ratio, fmt(mib(repo[k]), 1), runs[k]
            continue
          }
          if (!(k in st)) continue
          if (st[k] == "skip") {
            printf "| %s | %s | skipped | | | | | | | | |\n", label[op], tname[t]
            continue
          }
          w = wall[k]
          if (op == "walreplay") {
            printf "| %s | %s | - | - | - | - | %s entries/s | - | - | - | %d |\n", label[op], tname[t], fmt(extra[k], 0), runs[k]
            continue
          }
          rate = (w != "-" && w > 0 && bytes[k] != "-") ? fmt(mb(bytes[k]) / w, 1) : "-"
          # Ratios to restic in the same run: below 1, faster (or less CPU) than restic.
          rk = "restic" SUBSEP (op == "backup2kc" ? "backup2" : op); wr = "-"; cr = "-"
          if ((rk in st) && st[rk] == "ok" && st[k] == "ok") {
            if (wall[rk] > 0) wr = sprintf("%.2f", w / wall[rk])
            if (cpu[rk] != "-" && cpu[rk] > 0 && cpu[k] != "-") cr = sprintf("%.2f", cpu[k] / cpu[rk])
          }
          s = (st[k] == "fail") ? "FAILED" : fmt(w, 2)
          if (st[k] != "fail" && runs[k] > 1 && wlo[k] != "-") s = s sprintf(" (%.2f-%.2f)", wlo[k], whi[k])
          c = fmt(cpu[k], 2)
          # S3 rows: the MinIO server'"'"'s CPU seconds of the same run are in "extra".
          if (op ~ /^s3/ && extra[k] != "-" && c != "-") c = c sprintf(" + %.2f MinIO", extra[k])
          printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", label[op], tname[t], s, c, wr, cr, rate,
            (rss[k] == "-" ? "-" : fmt(rss[k] / 1024, 0)), (repo[k] == "-" ? "-" : fmt(mib(repo[k]), 1)),
            (added[k] == "-" ? "-" : fmt(mib(added[k]), 1)), runs[k]
        }
      }
      exit
      }
      if (mode == "terminal") print "Targets"; else print "## Targets"
      print ""
      print "| target (source) | measured | verdict |"
      print "|---|---|---|"
      M = "memento" SUBSEP
      # seed: full backup of 1 GiB under 5 min
      k = M "backup1"
      if (st[k] == "ok") { pg = wall[k] * 1073741824 / data
        printf "| full backup of 1 GiB under 5 min (seed) | %.1f s for %.2f GiB = %.1f s per GiB | %s |\n", wall[k], data / 1073741824, pg, verdict(pg < 300) }
      else printf "| full backup of 1 GiB under 5 min (seed) | not measured | n/a |\n"
      # seed: restore of 10 GiB under 10 min
      k = M "restore"
      if (st[k] == "ok") { r = day / wall[k]; t10 = 10 * 1073741824 / r
        printf "| restore of 10 GiB under 10 min (seed) | %.1f MB/s, so 10 GiB in %.0f s%s | %s |\n", mb(r), t10, (day >= 10 * 1073741824 * 0.9 ? "" : " (extrapolated)"), verdict(t10 < 600) }
      else printf "| restore of 10 GiB under 10 min (seed) | not measured | n/a |\n"
      # verify L2
      k = M "verify"
      if (st[k] == "ok") { spg = wall[k] / (day / 1e9); r = mb(day) / wall[k]
        printf "| verify L2 under 30 s/GB (seed) | %.1f s/GB | %s |\n", spg, verdict(spg < 30)
        printf "| verify L2 at least 500 MB/s (issue 6) | %.0f MB/s | %s |\n", r, verdict(r >= 500) }
      else { printf "| verify L2 under 30 s/GB (seed) | not measured (%s) | n/a |\n", (k in st) ? "verify not in this build" : "not run"
             printf "| verify L2 at least 500 MB/s (issue 6) | not measured | n/a |\n" }
      # WAL replay
      k = M "walreplay"
      if (st[k] == "ok") { e = extra[k]
        printf "| WAL replay over 1,000 entries/s (seed) | %.0f entries/s | %s |\n", e, verdict(e > 1000)
        printf "| WAL replay at least 1M entries/s (issue 4) | %.0f entries/s | %s |\n", e, verdict(e >= 1e6) }
      else printf "| WAL replay over 1,000 entries/s (seed) | not measured | n/a |\n"
      # PITR over 1,000 segments
      k = M "pitr1000"
      if (st[k] == "ok") {
        printf "| PITR over 1,000 segments under 20 min (seed) | %.1f s (%s) | %s |\n", wall[k], note[k], verdict(wall[k] < 1200)
        printf "| PITR over 1,000 segments under 60 s (issue 4) | %.1f s | %s |\n", wall[k], verdict(wall[k] < 60) }
      else printf "| PITR over 1,000 segments under 20 min (seed) | not measured (%s) | n/a |\n", (st[k] == "fail") ? "FAILED" : ((note[k] != "" && note[k] != "-") ? note[k] : "PITR not in this build")
      # issue 2
      R = "restic" SUBSEP; T = "tar" SUBSEP
      if (st[M "backup1"] == "ok" && st[R "backup1"] == "ok") { x = wall[R "backup1"] / wall[M "backup1"]
        printf "| first backup at least 2x restic'"'"'s throughput (issue 2) | %.2fx (memento %.1f s, restic %.1f s) | %s |\n", x, wall[M "backup1"], wall[R "backup1"], verdict(x >= 2) }
      if (st[M "backup1"] == "ok" && st[R "backup1"] == "ok" && cpu[M "backup1"] > 0) { x = cpu[R "backup1"] / cpu[M "backup1"]
        printf "| the same by CPU time (user+sys, less sensitive to the shared machine) | %.2fx (memento %.1f s, restic %.1f s) | %s |\n", x, cpu[M "backup1"], cpu[R "backup1"], verdict(x >= 2) }
      if (st[M "backup1"] == "ok" && st[T "backup1"] == "ok") { x = wall[T "backup1"] / wall[M "backup1"]
        printf "| first backup at least as fast as tar \\| zstd -3 -T2 + sha256sum (issue 2) | %.2fx (memento %.1f s, tar pipeline %.1f s) | %s |\n", x, wall[M "backup1"], wall[T "backup1"], verdict(x >= 1) }
      mr = 0
      split("backup1 backup2 backup3", bo, " ")
      for (b in bo) if ((M bo[b]) in rss && rss[M bo[b]] != "-" && rss[M bo[b]] + 0 > mr) mr = rss[M bo[b]] + 0
      if (mr > 0) printf "| backup peak RSS under 300 MiB (issue 2) | %.0f MiB | %s |\n", mr / 1024, verdict(mr / 1024 < 300)
      if (st[M "backup2"] == "ok") { w2 = wall[M "backup2"]; rw = (st[R "backup2"] == "ok") ? wall[R "backup2"] : -1
        printf "| second backup, nothing changed: under 2 s and no slower than restic (issue 2) | %.2f s (restic %s s) | %s |\n", w2, (rw < 0 ? "-" : sprintf("%.2f", rw)), verdict(w2 < 2 && (rw < 0 || w2 <= rw)) }
      # issue 18: the unchanged re-backup at most half the CPU time of restic (wall: the shared machine)
      split("backup2 backup2kc", uo, " ")
      for (u = 1; u <= 2; u++) if (st[M uo[u]] == "ok" && st[R "backup2"] == "ok" && cpu[R "backup2"] > 0) { x = cpu[M uo[u]] / cpu[R "backup2"]
        printf "| second backup, nothing changed%s: at most 0.5x restic'"'"'s CPU time (issue 18) | %.2fx (memento %.2f s, restic %.2f s; wall %.2fx) | %s |\n", (u == 2 ? ", key cache on" : ""), x, cpu[M uo[u]], cpu[R "backup2"], (wall[R "backup2"] > 0 ? wall[M uo[u]] / wall[R "backup2"] : 0), verdict(x <= 0.5) }
      # the bytes the day stored: the backup after it and, on a data dir, the wal archive run before it
      # (each row has its own "added")
      if (st[M "backup3"] == "ok") { ds = added[M "backup3"] + ((st[M "walarchive1"] == "ok" && added[M "walarchive1"] != "-") ? added[M "walarchive1"] : 0); a = ds / data * 100
        printf "| after a day: new data stored at most 10 %% of the dataset (issue 2) | %.1f MiB = %.2f %% of %.0f MiB | %s |\n", mib(ds), a, mib(data), verdict(a <= 10)
        if (daynew > 0) printf "| after a day: at most 1.5x the truly new bytes stored (issue 18) | %.1f MiB (WAL archive %s + backup %.1f MiB) = %.2fx the %.1f MiB the day made new | %s |\n", mib(ds), (st[M "walarchive1"] == "ok" ? sprintf("%.1f", mib(added[M "walarchive1"])) : "-"), mib(added[M "backup3"]), ds / daynew, mib(daynew), verdict(ds <= 1.5 * daynew) }
      if (st[M "restore"] == "ok" && st[R "restore"] == "ok") { x = wall[R "restore"] / wall[M "restore"]
        printf "| restore at least 2x restic'"'"'s throughput (issue 2) | %.2fx (memento %.1f s, restic %.1f s) | %s |\n", x, wall[M "restore"], wall[R "restore"], verdict(x >= 2)
        if (cpu[M "restore"] > 0) { x = cpu[R "restore"] / cpu[M "restore"]
          printf "| the same by CPU time | %.2fx (memento %.1f s, restic %.1f s) | %s |\n", x, cpu[M "restore"], cpu[R "restore"], verdict(x >= 2) } }
      # The FUSE read of the largest file among the per-kind rows.
      k = M "mountread"; fb = -1
      n2 = split("mountread mountwal mountwarm mountcold", fops, " ")
      for (f = 1; f <= n2; f++) if (st[M fops[f]] == "ok" && bytes[M fops[f]] + 0 > fb) { fb = bytes[M fops[f]] + 0; k = M fops[f]; fop = fops[f] }
      if (st[k] == "ok") { mr = bytes[k] / wall[k]
        if (st[M "restore"] == "ok") { rr = day / wall[M "restore"]
          printf "| FUSE read at least 50 %% of restore throughput (issue 5) | %.0f MB/s vs restore %.0f MB/s (%.0f %%) | %s |\n", mb(mr), mb(rr), mr / rr * 100, verdict(mr >= rr / 2) }
        if (st[R fop] == "ok") { x = wall[R fop] / wall[k] * bytes[k] / bytes[R fop]
          printf "| FUSE read at least 3x restic mount (issue 5) | %.2fx | %s |\n", x, verdict(x >= 3) } }
      else printf "| FUSE read at least 50 %% of restore, 3x restic mount (issue 5) | not measured (memento mount not in this build) | n/a |\n"
      k = M "mountemb"
      if (st[k] == "ok") { mr = bytes[k] / wall[k]
        if (st[M "restoreemb"] == "ok") { rr = bytes[M "restoreemb"] / wall[M "restoreemb"]
          printf "| FUSE read of one %.0f MiB file at least 50 %% of restore of it (issue 5) | %.0f MB/s vs restore %.0f MB/s (%.0f %%) | %s |\n", mib(bytes[k]), mb(mr), mb(rr), mr / rr * 100, verdict(mr >= rr / 2) }
        if (st[R "mountemb"] == "ok") { x = wall[R "mountemb"] / wall[k] * bytes[k] / bytes[R "mountemb"]
          printf "| FUSE read of one %.0f MiB file at least 3x restic mount (issue 5) | %.2fx | %s |\n", mib(bytes[k]), x, verdict(x >= 3)
          if (cpu[k] > 0) { x = cpu[R "mountemb"] / cpu[k]
            printf "| the same by CPU time (dd and the mount server) | %.2fx (memento %.2f s, restic %.2f s) | %s |\n", x, cpu[k], cpu[R "mountemb"], verdict(x >= 3) } } }
      k = M "walarchive100"
      if (st[k] == "ok" && bytes[k] > 0) { r = bytes[k] / wall[k]
        printf "| incremental archive of 100 MB new WAL under 2 s (issue 4) | %.1f MB in %.2f s (%.0f MB/s) | %s |\n", mb(bytes[k]), wall[k], mb(r), verdict(1e8 / r < 2) }
      else printf "| incremental archive of 100 MB new WAL under 2 s (issue 4) | not measured (%s) | n/a |\n", (st[k] == "fail") ? "FAILED" : ((note[k] != "" && note[k] != "-") ? note[k] : "wal archive not in this build")
      # issue 8: object storage (scripts/bench/s3.sh)
      k = M "s3backup1"; rk = R "s3backup1"
      if (st[k] == "ok" && st[rk] == "ok") { x = wall[rk] / wall[k]
        printf "| backup straight to MinIO at least 2x restic'"'"'s throughput (issue 8) | %.2fx (memento %.1f s, restic %.1f s) | %s |\n", x, wall[k], wall[rk], verdict(x >= 2)
        if (cpu[k] > 0) { x = cpu[rk] / cpu[k]
          printf "| the same by client CPU time (MinIO: memento %s s, restic %s s) | %.2fx (memento %.1f s, restic %.1f s) | %s |\n", fmt(extra[k], 1), fmt(extra[rk], 1), x, cpu[k], cpu[rk], verdict(x >= 2) } }
      else printf "| backup straight to MinIO at least 2x restic'"'"'s throughput (issue 8) | not measured (%s) | n/a |\n", (k in st && note[k] != "-" && note[k] != "") ? note[k] : "no S3 rows"
      k = M "s3replicate"; pk = "s3put" SUBSEP "s3replicate"
      if (st[k] == "ok" && st[pk] == "ok") { x = wall[pk] / wall[k]
        printf "| replication to MinIO at least 80 %% of a plain parallel upload (issue 8) | %.0f %% (memento %.1f MB/s, s3put %.1f MB/s) | %s |\n", x * 100, mb(bytes[k]) / wall[k], mb(bytes[pk]) / wall[pk], verdict(x >= 0.8) }
      else printf "| replication to MinIO at least 80 %% of a plain parallel upload (issue 8) | not measured (%s) | n/a |\n", (k in st && note[k] != "-" && note[k] != "") ? note[k] : "no S3 rows"
    }'
}

# notes_on_rows prints the notes of SUMMARY's skipped, failed and annotated rows.
notes_on_rows() {
  local notes
  notes=$(printf '%s\n' "$SUMMARY" | awk -F'\t' '$3 == "skip" || $3 == "fail" || ($11 != "-" && $11 != "") {printf "- %s %s (%s): %s\n", $1, $2, $3, $11}')
  [ -z "$notes" ] || printf '\nNotes on rows:\n\n%s\n' "$notes"
}

# profile_section PROFILE prints a profile's dataset and table.
profile_section() {
  load_profile "$1"
  if [ "$mode" = terminal ]; then
    printf '\nProfile %s: %s bytes, %s files (load average %s at its start, %s at its end; %s s)\n\n' \
      "$PROFILE" "$DATA_BYTES" "$DATA_FILES" "$P_LOAD_START" "$P_LOAD_END" "$P_ELAPSED"
    table rows
    return
  fi
  echo "## Profile \`$PROFILE\`"
  echo
  if [ "$KIND" = paths ]; then
    echo "Dataset: $DATASET_CMD: $GEN_LINE; $DATA_BYTES bytes in $DATA_FILES files, backed up as a plain path"
    echo "(\`memento backup PATH\`, \`restic backup PATH\`, \`borg create ... PATH\`, tar)."
    echo
    echo "The day of activity (in place) grew the tree to $DAY_BYTES bytes: $(cat "$P_LOGS/mutate.log")."
  else
    echo "Dataset: \`$DATASET_CMD\`: $DATA_BYTES bytes"
    echo "($(awk -v b="$DATA_BYTES" 'BEGIN {printf "%.2f GiB", b / 1073741824}')), $DATA_FILES files, spaces \`$SPACES_LIST\`, $WAL_SEGS WAL segments,"
    echo "768-dim float32 embeddings. engram-sim said: \`$GEN_LINE\`"
    echo
    echo "The day of activity (\`engram-sim mutate --profile $PROFILE --seed $((BENCH_SEED + 1))\`, applied in place so that unchanged"
    echo "files keep their inode and times, as on a live server) grew the data to $DAY_BYTES bytes, $DAY_WAL of them new WAL, ${DAY_NEW:-0} truly new in all:"
    echo
    echo '```'
    cat "$P_LOGS/mutate.log"
    echo '```'
  fi
  echo
  echo "Load average (1, 5, 15 min): $P_LOAD_START at the start of this profile, $P_LOAD_END at its end ($P_ELAPSED s)."
  echo
  table rows
  notes_on_rows
  echo
}

# common_section prints the rows that do not depend on the profile.
common_section() {
  SUMMARY=$(summarize "$COMMON_RESULTS")
  DATA_BYTES=0 DAY_BYTES=0 DAY_WAL=0 DAY_NEW=0
  if [ "$mode" = terminal ]; then
    printf '\nRows that do not depend on the profile\n\n'
    table rows
    return
  fi
  echo "## Rows that do not depend on the profile"
  echo
  echo "One file of float32 embeddings through the FUSE mounts and restored, the 100 MB WAL archive and"
  echo "PITR over 1,000+ segments (a dedicated small data dir), WAL replay (Go benchmark)."
  echo
  table rows
  notes_on_rows
  echo
}

# targets_section: the targets, on the first data-dir profile and the common rows.
targets_section() {
  if [ -n "${FIRST_DATADIR:-}" ]; then
    load_profile "$FIRST_DATADIR"
    SUMMARY=$(summarize "$P_RESULTS" "$COMMON_RESULTS")
  else
    SUMMARY=$(summarize "$COMMON_RESULTS")
    DATA_BYTES=0 DAY_BYTES=0 DAY_WAL=0 DAY_NEW=0
  fi
  [ "$mode" = terminal ] && echo
  table targets
  if [ "$mode" != terminal ]; then
    echo
    echo "Targets are checked on the \`${FIRST_DATADIR:-none}\` profile (the first data dir of the run) and on the"
    echo "rows that do not depend on the profile."
  fi
  return 0
}

if [ "$mode" = terminal ]; then
  for p in "${PROFILES[@]}"; do profile_section "$p"; done
  common_section
  targets_section
  echo
  exit 0
fi

mversion=$("$MEMENTO" version 2>/dev/null | head -n 1)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
fs=$(df -T "$BENCH_DIR" 2>/dev/null | awk 'NR == 2 {print $2}')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f:1", a / b; else printf "-" }'; }
get() { printf '%s\n' "$SUMMARY" | awk -F'\t' -v t="$1" -v o="$2" -v c="$3" '$1 == t && $2 == o {print $c}'; }

cat <<EOF
# Benchmarks

Produced by \`scripts/bench.sh\` (\`make bench\`; \`make bench-quick\` is a 256 MiB run and \`make bench-smoke\`
a tiny one, both writing to their work dir instead of this file). Do not edit by hand: rerun the benchmark.

Command: \`$CMDLINE\` — finished $(date -u +%Y-%m-%dT%H:%MZ), ${ELAPSED} s in all.
Profiles: $(for p in "${PROFILES[@]}"; do printf '`%s` ' "$p"; done)(one table each below).

## Machine and versions

| | |
|---|---|
| CPU | $cpu, $(nproc) cores |
| RAM | $mem |
| kernel | $(uname -sr) |
| load average (1, 5, 15 min) | $LOAD_START at the start, $LOAD_END at the end (the machine is shared) |
| work dir | \`$BENCH_DIR\` ($fs) |
| memento | $mversion |
| restic | $(restic version 2>/dev/null | head -n 1) |
| borg | $(borg --version 2>/dev/null) |
| zstd | $(zstd --version 2>/dev/null | head -n 1 | sed 's/^\*\*\* //; s/ \*\*\*$//') |
| tar | $(tar --version 2>/dev/null | head -n 1) |
| Go | $(go version 2>/dev/null | awk '{print $3}') |

EOF
cat "$(dirname "$0")/profiles.md"
cat <<EOF

## How to read the tables

Median of $BENCH_RUNS round(s). MB/s = dataset bytes (for restores: the restored bytes; for the
FUSE read: the file's bytes; for WAL archive: the WAL bytes shipped) / 10^6 / median wall seconds.
Peak RSS is the highest maximum resident set size of any single process of the operation over
all rounds (GNU time's ru_maxrss; for pipelines the largest member). Repository MiB is \`du -sb\`
after the operation (memento's less its fixed 4 MiB full-disk reserve file, \`.tmp-reserve\`); "added" is its growth over the previous operation. "÷ restic" is the row's
median wall (CPU) time divided by restic's for the same operation in the same run: below 1 is
faster (less CPU) than restic; for the repository size row it is the size ratio.

EOF
for p in "${PROFILES[@]}"; do profile_section "$p"; done
common_section
targets_section
# The compression section below is about the first data-dir profile.
if [ -n "${FIRST_DATADIR:-}" ]; then
  load_profile "$FIRST_DATADIR"
fi
cat <<EOF

## Compression: what the embeddings allow

The seed expected more than 5:1 from zstd on Engram data. It does not happen: the bulk of every
tier is 768-dim float32 embeddings, whose mantissa bytes are close to random.

| what | stored bytes for the first backup | ratio |
|---|---:|---:|
EOF
for t in tar memento restic borg; do
  r=$(get "$t" backup1 7)
  [ -n "$r" ] && [ "$r" != - ] || continue
  case $t in
    tar) what="zstd -3 on the tar stream (tar pipeline)" ;;
    memento) what="memento repository (zstd, byte shuffle where it pays; encrypted)" ;;
    restic) what="$restic_label repository (encrypted)" ;;
    borg) what="$borg_label repository (encrypted)" ;;
  esac
  echo "| $what | $r | $(ratio "$DATA_BYTES" "$r") |"
done
cat <<EOF

memento compresses each chunk with zstd and, for float32-shaped data, tries a 4-byte shuffle
first (\`chunk/shuffle.go\`: sign/exponent bytes of every float gathered together) and keeps it
only when it measurably helps; \`go test -run '^\$' -bench 'Compress\$' ./chunk/\` shows the ratio per
data kind, level and shuffle mode. Chunks that do not compress are stored as they are.

## Method

- Profiles run one after the other, each with all its rounds. Rounds: $BENCH_RUNS. In each round
  every tool starts from a fresh repository and a fresh copy of the profile's data (\`cp -a\`), then: first backup, second backup (nothing changed), the day's
  mutation in place, backup after the day, full restore of that backup into an empty directory,
  FUSE read (memento and restic), and memento's own operations. Operations run op by op, all
  tools in turn, and the tool order rotates every round, so drift on the shared machine hits
  every tool alike.
- Cache state before every timed run: **$BENCH_CACHE**. $( [ "$BENCH_CACHE" = drop ] &&
  echo '`sync; echo 3 > /proc/sys/vm/drop_caches`: every tool starts with nothing cached (its input, its repository, its own binary and index caches are read from disk).' ||
  echo 'the input of the run (the data dir for backups, the repository otherwise) is read once with `cat` right before it, so every tool starts with its input cached.')
- Timing: wall clock around \`/usr/bin/time -v bash -c 'COMMAND; sync'\`: the \`sync\` inside makes
  "done" mean "durable" for every tool, whatever each one fsyncs by itself.
- CPU s is the median user + system time of every process of the operation (all cores), from GNU
  time: on a shared machine it moves much less than wall time when other work competes for the
  cores, so the targets against restic are also given by CPU time. "min-max" is the spread of the
  wall times over the rounds: read a ratio as significant only when the spreads do not overlap.
- FUSE rows: CPU s is dd's plus the mount server's during the read (the server does the work).
  "one file of float32 embeddings" is a single file of unit vectors (768 dimensions), 1 GiB (256 MiB
  below a 1 GiB dataset), backed up once by memento and restic into repositories of its own.
- In round 1 every restore is compared with the source by \`diff -r\`; a difference is a failure.
- memento backs up a data dir with \`--data-dir DIR --all\` (one snapshot per space, spaces in parallel)
  and restores it with \`memento restore --all --latest\` (every space's latest snapshot and
  \`metadata.json\`, one command, as the peers restore the whole directory); the \`gosrc\` tree is
  backed up as a path (\`memento backup DIR\`) and restored by snapshot id.
- restic: \`init --repository-version 2\`, \`backup --compression auto\` (restic 0.14 compresses only
  with repository v2). borg: \`init -e repokey-blake2\`, \`create --compression $BENCH_BORG_COMPRESSION\`
  (lz4 is borg's default; \`BENCH_BORG_COMPRESSION=zstd,3\` for the other choice). All encrypted;
  passwords from MEMENTO_PASSWORD, RESTIC_PASSWORD, BORG_PASSPHRASE.
- tar baseline: \`scripts/bench/tar-backup.sh\`: \`tar -cf - . | tee FIFO | zstd -3 -T2 > b.tar.zst\`
  with \`sha256sum < FIFO\` running concurrently (one read of the data, both results); every backup
  is a full archive, so its "added" is the whole archive (only the newest is kept on disk, the
  repository size counts all of them). Restore: \`zstd -d | tar -x\`.
- FUSE: the repository is mounted first (not timed), caches are prepared, then
  \`dd if=FILE of=/dev/null bs=1M\` of one file of the latest backup is timed: per data-dir profile the
  largest WAL segment, warm page file and cold segment (one row each), for \`gosrc\` the largest file.
- memento WAL archive (\`memento wal archive --all\`) runs after the first backup (all WAL) and after
  the day's mutation (the day's WAL, measured before the day's backup). Each row's "added" is its
  own (the day stored the archive's and the backup's; before session 10 the backup's included the
  archive's and the archive rows counted the 4 MiB reserve file). The truly new bytes of the day
  (issue 18's target) are the appended WAL, 4 KiB per warm page rewritten, the new cold segments,
  and the hot files and checkpoint.json after the day (rewritten whole).
  PITR restores the first space to a WAL sequence in the middle of the day. A separate small data
  dir (24 MiB, one space, 64 KiB WAL segments) is backed up and archived, then gets ten times its
  WAL appended (about 100 MB, 1,600+ segments): archiving that new WAL is timed once, and PITR to
  its last entry (replaying all of it on top of the snapshot) $BENCH_RUNS time(s).
- WAL replay entries/s comes from the walreplay Go benchmark (\`BenchmarkReplay/zerocopy\`, the
  state PITR restores replay into: 50,000 768-dim entries read from disk, CRC-checked, validated
  and applied to a fresh state; the copy mode's figure is in the notes).
- Object storage (\`scripts/bench/s3.sh\`, issue 8): every round starts a fresh MinIO (the pinned
  \`scripts/minio.sh\` build, one drive, on 127.0.0.1 of this machine, so it shares the cores) that
  every tool of the round uses, tools interleaved, the order rotating. First backup of the dataset
  into a fresh bucket: memento \`backup --all\` vs restic \`-r s3:http://127.0.0.1:PORT/BUCKET\`
  (\`init --repository-version 2\`, \`backup --compression auto\`), credentials in AWS_ACCESS_KEY_ID /
  AWS_SECRET_ACCESS_KEY. Replication: a memento repository of the dataset (made once, not timed)
  copied into a fresh bucket by \`memento replicate\` (defaults, no password, so no audit record)
  vs \`s3put\` (\`repo/backend/s3/internal/s3put\`): every file of the repository, 8 at once, one
  minio-go PutObject each straight from the open file, on the backend's wire protocol (unsigned
  payload with a CRC32C trailer), so the ratio is what replication itself costs. CPU s is the
  client's; "+ N MinIO" is the server's CPU time during the same run (from /proc/PID/stat).
  Repository MiB is \`du -sb\` of the bucket in MinIO's data directory.
EOF


cat <<EOF

## Go micro-benchmarks

Each reports MB/s (b.SetBytes) or entries/s, so a regression shows without the full run:

\`\`\`
go test -run '^\$' -bench . ./chunk/ ./walreplay/ ./index/ ./repo/
\`\`\`

EOF
for p in chunk walreplay index repo fusefs; do
  [ -d "$ROOT/$p" ] || continue
  list=$(grep -ho '^func Benchmark[A-Za-z0-9_]*' "$ROOT/$p"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u | paste -sd' ' -)
  if [ -n "$list" ]; then echo "- \`$p/\`: $list"; else echo "- \`$p/\`: none yet"; fi
done
