#!/usr/bin/env python3
"""Adversarial forget/prune cycles on grouped small files (docs/benchmarks.md,
"Issue 18, session 22: review of fmt5 and smallfb").

usage: MEMENTO_PASSWORD=benchpw scripts/bench/prune-adversary.py BINARY WORKDIR SEED ITERATIONS [FORMAT] [OLDBIN]

FORMAT: init --format; OLDBIN: an older binary (of that format) that makes
about a third of the backups and checks --read-data every third iteration.
STOP_ON_MISMATCH=1 stops when the dry run and the real prune disagree,
keeping the repository and cache from before the real prune (repo.pre).

Every iteration: mutate a tree of small files (edits, deletions, new files,
copies of files under other paths in other dirs), back up 1-3 snapshots of
random subsets of its dirs, forget random snapshots, prune --dry-run then
prune at a random --max-unused (sometimes killed -9 at a random moment and
rerun), check --read-data, restore some remaining snapshots and compare
every file's digest with what the tree held at that backup. Any failure
stops with the repository kept.
"""
import hashlib, json, os, random, shutil, signal, subprocess, sys, time

M, W, SEED, N = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
FMT = sys.argv[5] if len(sys.argv) > 5 else ""
OLD = sys.argv[6] if len(sys.argv) > 6 else ""
rng = random.Random(SEED)
env = dict(os.environ, MEMENTO_PASSWORD="benchpw", MEMENTO_CACHE_DIR=W + "/cache")
R = W + "/repo"
SRC = W + "/src"
WORDS = "alpha beta gamma delta prune group member pack blob index tree file def return import func".split()


def run(args, check=True, binary=None, timeout=600):
    p = subprocess.run([binary or M] + args + ["--repo", R, "--no-progress"], env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        print("FAIL:", args, p.returncode, p.stdout[-2000:], p.stderr[-3000:])
        sys.exit(1)
    return p


def content():
    k = rng.random()
    n = int(rng.choice([60, 300, 2000, 9000, 30000, 70000, 140000]) * rng.uniform(0.5, 1.5))
    if k < 0.7:
        s = " ".join(rng.choice(WORDS) + str(rng.randrange(100)) for _ in range(n // 7 + 1))
        return s.encode()[:n]
    return rng.randbytes(n)


def digests():
    out = {}
    for d, _, fs in os.walk(SRC):
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, SRC)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def files():
    return sorted(k for k in digests())


def mutate(it):
    fs = files()
    for f in rng.sample(fs, len(fs) // 8):
        p = os.path.join(SRC, f)
        if rng.random() < 0.3:
            os.remove(p)
        else:
            with open(p, "ab") as fh:
                fh.write(b"# edit %d\n" % it)
    for _ in range(rng.randrange(5, 30)):
        d = os.path.join(SRC, "d%d" % rng.randrange(4), "s%d" % rng.randrange(3))
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "n%d_%d" % (it, rng.randrange(10**6))), "wb").write(content())
    fs = files()
    for f in rng.sample(fs, min(len(fs), rng.randrange(3, 15))):
        # the same content under another path, in another dir
        d = os.path.join(SRC, "d%d" % rng.randrange(4), "copies")
        os.makedirs(d, exist_ok=True)
        shutil.copyfile(os.path.join(SRC, f), os.path.join(d, "c%d_%s" % (it, os.path.basename(f))))


def snapshots():
    return json.loads(run(["snapshots", "--json"]).stdout)


def restore_check(sid, expect):
    t = W + "/out"
    shutil.rmtree(t, ignore_errors=True)
    run(["restore", sid, "--target", t, "-q"])
    got = {}
    for d, _, fs in os.walk(t):
        for f in fs:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, t + SRC)
            got[rel] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    if got != expect:
        missing = [k for k in expect if k not in got][:5]
        wrong = [k for k in expect if k in got and got[k] != expect[k]][:5]
        extra = [k for k in got if k not in expect][:5]
        print("RESTORE MISMATCH", sid[:8], "missing", missing, "wrong", wrong, "extra", extra)
        sys.exit(1)
    shutil.rmtree(t)


def main():
    shutil.rmtree(W, ignore_errors=True)
    os.makedirs(SRC)
    for i in range(600):
        d = os.path.join(SRC, "d%d" % rng.randrange(4), "s%d" % rng.randrange(3))
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "f%d" % i), "wb").write(content())
    init = ["init", "-q"] + (["--format", FMT] if FMT else [])
    run(init)
    expect = {}  # snapshot id -> digests
    stats = {"kills": 0, "dry_mismatch": 0, "prunes": 0, "regrouped": 0}
    for it in range(N):
        if it:
            mutate(it)
        all_d = digests()
        for _ in range(rng.randrange(1, 4)):
            ds = sorted(rng.sample(["d0", "d1", "d2", "d3"], rng.randrange(1, 5)))
            paths = [os.path.join(SRC, d) for d in ds if os.path.isdir(os.path.join(SRC, d))]
            binary = OLD if OLD and rng.random() < 0.3 else None
            out = json.loads(run(["backup", "--json", "-q"] + paths, binary=binary).stdout or "[]") if binary is None else None
            if binary is not None:
                run(["backup", "-q"] + paths, binary=binary)
                sid = snapshots()[-1]["id"]
            else:
                sid = out[0]["snapshot"]
            expect[sid] = {k: v for k, v in all_d.items() if k.split("/")[0] in ds}
        sns = [s["id"] for s in snapshots()]
        if len(sns) > 2:
            gone = rng.sample(sns, rng.randrange(0, len(sns) - 1))
            if gone:
                run(["forget", "-q", "--allow-empty"] + gone)
                for g in gone:
                    expect.pop(g, None)
        mu = rng.choice(["0%", "5%", "10%", "20%", "50%", "100%"])
        dry = json.loads(run(["prune", "--dry-run", "--json", "--max-unused", mu]).stdout)
        if rng.random() < 0.4:
            p = subprocess.Popen([M, "prune", "--repo", R, "--no-progress", "-q", "--max-unused", mu], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.6))
            p.send_signal(signal.SIGKILL)
            rc = p.wait()
            if rc == -9:
                stats["kills"] += 1
                run(["unlock", "-q"], check=False)
                # the repository must be consistent after the kill
                c = run(["check", "--read-data", "-q"], check=False)
                if c.returncode != 0:
                    print("CHECK AFTER KILL FAILED", c.stdout[-2000:], c.stderr[-2000:])
                    sys.exit(1)
                dry = None
            else:
                # it finished before the kill: the dry run planned that
                # prune, not the one below (which finds its result)
                dry = None
        if dry is not None:
            shutil.rmtree(W + "/repo.pre", ignore_errors=True)
            shutil.copytree(R, W + "/repo.pre")
            shutil.rmtree(W + "/cache.pre", ignore_errors=True)
            shutil.copytree(W + "/cache", W + "/cache.pre")
        real = json.loads(run(["prune", "--json", "--max-unused", mu]).stdout)
        stats["prunes"] += 1
        stats["regrouped"] += real.get("groups_regrouped", 0)
        if dry is not None:
            for k in ["packs_deleted", "packs_repacked", "groups_regrouped", "bytes_regrouped", "blobs_used", "bytes_repacked"]:
                if dry.get(k) != real.get(k):
                    stats["dry_mismatch"] += 1
                    print("it %d dry-run %s %s != real %s (max-unused %s)" % (it, k, dry.get(k), real.get(k), mu))
                    if os.environ.get("STOP_ON_MISMATCH"):
                        print("repo before the prune: %s/repo.pre" % W); sys.exit(3)
        run(["check", "--read-data", "-q"])
        # a second prune at the same threshold has little or nothing to do
        again = json.loads(run(["prune", "--json", "--dry-run", "--max-unused", mu]).stdout)
        if again["groups_regrouped"] or again["packs_repacked"] and mu == "0%":
            print("it %d: prune again at %s would still repack %d / regroup %d" % (it, mu, again["packs_repacked"], again["groups_regrouped"]))
        live = set(s["id"] for s in snapshots())
        assert live == set(expect), (live, set(expect))
        for sid in rng.sample(sorted(live), min(2, len(live))):
            restore_check(sid, expect[sid])
        if OLD and it % 3 == 2:
            c = run(["check", "--read-data", "-q"], check=False, binary=OLD)
            if c.returncode != 0:
                print("OLD BINARY CHECK FAILED", c.stderr[-2000:])
                sys.exit(1)
        print("it", it, "snapshots", len(live), "max-unused", mu, "repacked", real["packs_repacked"], "deleted", real["packs_deleted"], "regrouped", real["groups_regrouped"], flush=True)
    for sid in sorted(expect):
        restore_check(sid, expect[sid])
    print("OK", stats)


main()
