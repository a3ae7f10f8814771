#!/bin/bash
# A restore of an older snapshot over a live data dir in a backups-only
# repository (no WAL archive), killed (SIGKILL, strace fault injection on
# entry of a renameat or fsync, which then does not run) at each step of its swap,
# then the next backup: does it fork the timeline exactly when the
# restored content was swapped in? Kill points: before timelines.json is
# written ("tl"), before the space is moved aside ("aside"), between the
# swap's two renames ("in"), after the swap, before the fsync of spaces/
# ("after"), and not killed ("none"). Prints per point: the restore's exit
# code, the space's WAL end and timeline as engram-sim reads them,
# timelines.json, the backup's exit code and the timelines `pitr ranges`
# counts. Expected: tl -> untouched (2700), 1 timeline; aside -> untouched
# under a pending fork, 1 timeline (the WAL still holds the newest
# snapshot's last entry); in -> the space moved aside whole
# (.pre-restore-*), the backup refuses ("no spaces"); after, none -> 1200, 2
# timelines. KIND=2 restores the newest snapshot instead (never a fork).
# docs/benchmarks.md, "Issue 18, session 26: data-loss review of session 25".
#
#   [KIND=1|2] scripts/bench/timeline-kill.sh BINARY SIM WORKDIR [POINT...]
set -u
B=$1; S=$2; W=$3; shift 3
KILLS=${*:-tl aside in after none}
export MEMENTO_PASSWORD=benchpw MEMENTO_CACHE_DIR=$W/cache
sim() { $S run --dir $1 --spaces 1 --rate 20000 --entries $2 --segment-size 48KiB --dim 8 --same-ts 0.3 --checkpoint-every 100ms --seed $3 >/dev/null; }
end() { $S truth --dir $1 --space space-a 2>/dev/null | python3 -c "import json,sys;d=json.loads(sys.stdin.read());print(d['sequence'],'timeline',d.get('timeline'),'pending',d.get('timeline_pending'))" 2>/dev/null || echo none; }
rm -rf "$W"; mkdir -p "$W/base"
$B init -r $W/base/repo >/dev/null
sim $W/base/dd 1200 1; $B backup -r $W/base/repo --data-dir $W/base/dd --all --no-progress -q
sim $W/base/dd 1500 2; $B backup -r $W/base/repo --data-dir $W/base/dd --all --no-progress -q
$B snapshots -r $W/base/repo --json | python3 -c "import json,sys;[print(s['id']) for s in json.load(sys.stdin)]" > $W/base/snaps
for n in $KILLS; do
	k=$W/k; rm -rf $k; cp -a $W/base $k
	case $n in
	tl) at=(-P $k/dd/.memento/timelines.json -e inject=renameat:signal=KILL:when=1) ;;
	aside) at=(-P $k/dd/spaces/space-a -e inject=renameat:signal=KILL:when=1) ;;
	in) at=(-P $k/dd/spaces/space-a -e inject=renameat:signal=KILL:when=2) ;;
	after) at=(-P $k/dd/spaces -e trace=renameat,fsync -e inject=fsync:signal=KILL:when=1) ;;
	*) at=() ;;
	esac
	strace -f -o /dev/null -e trace=renameat "${at[@]}" \
		$B restore -r $k/repo $(sed -n ${KIND:-1}p $k/snaps) --target $k/dd --no-progress >$k/restore.out 2>&1
	rc=$?
	e=$(end $k/dd); tl=$(tr -d ' \n' 2>/dev/null < $k/dd/.memento/timelines.json | cut -c1-90)
	$B backup -r $k/repo --data-dir $k/dd --all --no-progress -q >$k/backup.out 2>&1; brc=$?
	ntl=$($B pitr ranges -r $k/repo --space space-a --json 2>/dev/null | python3 -c "import json,sys;d=json.load(sys.stdin);print(len(d['timelines']),'newest',d['timeline'])" 2>/dev/null)
	echo "kill $n: restore rc $rc; space [$e]; timelines.json $tl; backup rc $brc; timelines $ntl"
done 2>&1 | grep -v Killed
