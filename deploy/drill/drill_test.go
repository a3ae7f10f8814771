// Package drill rehearses the disaster-recovery runbook
// (docs/operations/disaster-recovery.md) end to end: for each of its five
// scenarios it builds an engram-sim data dir under live writes, archived
// continuously into a local primary repository and replicated to a real
// MinIO, causes the disaster, runs the runbook's command blocks with bash
// against the real binaries, starts `engram-sim serve` on the recovered
// data dir and checks every recovered space against engram-sim's ground
// truth (the WAL as written up to the crash). It measures the RTO
// (detection to a healthy Engram serving the right digests) and the RPO
// (entries written but not recovered), then writes again, archives, backs
// up and proves the new history restores ("the day after").
//
// `go test ./drill/` runs a small case of each scenario; `make drill` runs
// them at DRILL_SIZE (1G by default) and writes the results table to
// DRILL_REPORT.
package drill

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	docrunbook "memento/deploy/runbook"
	"memento/repo/backend/s3/miniotest"
)

// binDir holds memento and engram-sim, built once by TestMain; the runbook
// blocks find them on PATH.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "memento-drill-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for name, pkg := range map[string]string{"memento": "../../cmd/memento", "engram-sim": "../../cmd/engram-sim"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The runbook's command blocks, by "scenario/step".
type runbook map[string]string

// loadRunbook extracts every tagged ```sh block of the runbook
// (deploy/runbook: the parser the operations guide's test uses too).
func loadRunbook(t *testing.T) runbook {
	t.Helper()
	doc, err := docrunbook.Load("../../docs/operations/disaster-recovery.md", "drill")
	if err != nil {
		t.Fatal(err)
	}
	rb := runbook{}
	for _, name := range doc.Names() {
		b, _ := doc.Block(name)
		rb[name] = b.Body
	}
	return rb
}

// params is the size of a drill.
type params struct {
	size     string  // engram-sim generate --size
	dim      int     // embedding dimension (0: engram-sim's default)
	segSize  string  // WAL segment size
	rate     float64 // live writes, entries/s over all spaces
	live     uint64  // entries per space archived during the live phase, before and after the mid-run backup
	dayAfter uint64  // entries written after the recovery
}

func paramsFromEnv(t *testing.T) params {
	size := os.Getenv("DRILL_SIZE")
	if size == "" || testing.Short() {
		return params{size: "3MB", dim: 64, segSize: "128KiB", rate: 600, live: 300, dayAfter: 300}
	}
	// 200 entries/s of 768-dimension records is about 0.7 MB/s of WAL:
	// what `replicate` keeps up with to MinIO on the loaded 2-core VM.
	return params{size: size, segSize: "16MiB", rate: 200, live: 600, dayAfter: 3000}
}

// truthLine is engram-sim truth's output (and serve's digest answer).
type truthLine struct {
	Space       string `json:"space"`
	Sequence    uint64 `json:"sequence"`
	TimestampNS int64  `json:"timestamp_ns"`
	Digest      string `json:"digest"`
}

// drill is one scenario's world.
type drill struct {
	t       *testing.T
	p       params
	rb      runbook
	srv     *miniotest.Server
	work    string
	vars    map[string]string
	baseEnv []string
	bg      []*exec.Cmd // live processes: writer, wal watch, replication
	spaces  []string
	load    string
	results []result
	target  string // the scenario's seed RTO target

	// at the crash
	written map[string]truthLine // per space: the newest entry written
	walCopy string               // copy of every space's WAL as written (the ground truth)
}

func newDrill(t *testing.T, srv *miniotest.Server, rb runbook, p params) *drill {
	d := &drill{t: t, p: p, rb: rb, srv: srv, work: t.TempDir(), load: loadAverage()}
	pw := filepath.Join(d.work, "password")
	if err := os.WriteFile(pw, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.baseEnv = append([]string{
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"MEMENTO_PASSWORD_FILE=" + pw,
		"MEMENTO_CACHE_DIR=" + filepath.Join(d.work, "cache"),
		"MEMENTO_S3_TIMEOUT=30s",
	}, srv.Env()...)
	d.vars = map[string]string{
		"REPO":     filepath.Join(d.work, "repo"),
		"REPLICA":  srv.URL(srv.MakeBucket(t), "engram"),
		"DATA_DIR": filepath.Join(d.work, "data"),
		"NEW_REPO": filepath.Join(d.work, "new-repo"),
		"SCRATCH":  filepath.Join(d.work, "scratch"),
	}
	t.Cleanup(d.stopLive)
	return d
}

func (d *drill) environ() []string {
	env := append([]string(nil), d.baseEnv...)
	for k, v := range d.vars {
		env = append(env, k+"="+v)
	}
	return env
}

// sh runs the runbook block key (after the shell functions) with bash and
// returns its output; a non-zero exit fails the drill.
func (d *drill) sh(key string) string {
	d.t.Helper()
	block, ok := d.rb[key]
	if !ok {
		d.t.Fatalf("runbook has no block %s", key)
	}
	script := "set -euo pipefail\n" + d.rb["lib/functions"] + block
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = d.environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		d.t.Fatalf("runbook block %s: %v\n%s\n--- output:\n%s", key, err, block, out.String())
	}
	d.t.Logf("runbook %s (%.1fs):\n%s", key, time.Since(start).Seconds(), out.String())
	return out.String()
}

// run runs a binary (memento or engram-sim) and returns stdout, stderr and
// the exit code.
func (d *drill) run(bin string, args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, bin), args...)
	cmd.Env = d.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	if el := time.Since(start); el > time.Second {
		d.t.Logf("%s %s: %.1fs", bin, strings.Join(args, " "), el.Seconds())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		d.t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0
}

func (d *drill) must(bin string, args ...string) string {
	d.t.Helper()
	out, errs, code := d.run(bin, args...)
	if code != 0 {
		d.t.Fatalf("%s %s: exit %d\n%s%s", bin, strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (d *drill) memento(repo string, args ...string) string {
	d.t.Helper()
	return d.must("memento", append([]string{"-r", repo, "-q"}, args...)...)
}

// startBG starts a live process in its own process group (so a crash can
// kill it with everything it spawned).
func (d *drill) startBG(name string, args ...string) {
	d.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = d.environ()
	log, err := os.Create(filepath.Join(d.work, fmt.Sprintf("bg-%d.log", len(d.bg))))
	if err != nil {
		d.t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.bg = append(d.bg, cmd)
}

// stopLive kills every live process at once, as a crash of the host would.
func (d *drill) stopLive() {
	for _, c := range d.bg {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	for _, c := range d.bg {
		_ = c.Wait()
	}
	d.bg = nil
}

// archiveEnd is the newest recoverable sequence of space in repo.
func (d *drill) archiveEnd(repo, space string) uint64 {
	d.t.Helper()
	var r struct {
		Ranges []struct {
			ToSeq uint64 `json:"to_seq"`
		} `json:"ranges"`
	}
	if err := json.Unmarshal([]byte(d.memento(repo, "pitr", "ranges", "--space", space, "--json")), &r); err != nil {
		d.t.Fatal(err)
	}
	if len(r.Ranges) == 0 {
		d.t.Fatalf("space %s has no recoverable range in %s", space, repo)
	}
	return r.Ranges[len(r.Ranges)-1].ToSeq
}

// shipped is, per space, the newest sequence `wal watch` reports archived
// in its --ship-log.
func (d *drill) shipped() map[string]uint64 {
	got := map[string]uint64{}
	b, _ := os.ReadFile(filepath.Join(d.work, "ship.log"))
	for _, line := range strings.Split(string(b), "\n") {
		var l struct {
			Space   string `json:"space"`
			LastSeq uint64 `json:"last_seq"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.LastSeq > got[l.Space] {
			got[l.Space] = l.LastSeq
		}
	}
	return got
}

// replications is how many replication runs completed.
func (d *drill) replications() int {
	b, _ := os.ReadFile(filepath.Join(d.work, "replicated.log"))
	return strings.Count(string(b), "\n")
}

// waitFor polls cond (cheap: it reads the live processes' logs) until it
// holds; the live processes make it true.
func (d *drill) waitFor(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not after 20 min; live logs:\n%s", what, d.bgLogs())
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not a synchronisation
	}
}

// waitArchived waits until `wal watch` has archived every space past want.
func (d *drill) waitArchived(want map[string]uint64) map[string]uint64 {
	d.t.Helper()
	var got map[string]uint64
	d.waitFor(fmt.Sprintf("archive past %v", want), func() bool {
		got = d.shipped()
		for _, s := range d.spaces {
			if got[s] < want[s] {
				return false
			}
		}
		return true
	})
	return got
}

func (d *drill) bgLogs() string {
	var b strings.Builder
	for i := range d.bg {
		out, _ := os.ReadFile(filepath.Join(d.work, fmt.Sprintf("bg-%d.log", i)))
		fmt.Fprintf(&b, "--- %s\n%s\n", strings.Join(d.bg[i].Args, " "), tail(string(out), 2000))
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// prepare builds the normal operation: a generated data dir, a primary
// repository with a snapshot of every space, live writes, continuous WAL
// archiving, a backup during the writes and continuous replication to
// MinIO; it returns once all of them have run for a while.
func (d *drill) prepare() {
	d.t.Helper()
	dd, repo, replica := d.vars["DATA_DIR"], d.vars["REPO"], d.vars["REPLICA"]
	gen := []string{"generate", "--dir", dd, "--size", d.p.size, "--spaces", "3", "--segment-size", d.p.segSize}
	if d.p.dim > 0 {
		gen = append(gen, "--dim", strconv.Itoa(d.p.dim))
	}
	d.must("engram-sim", gen...)
	d.memento(repo, "init")
	d.memento(repo, "backup", "--data-dir", dd, "--all", "--tag", "base")
	d.memento(repo, "replicate", "--to", replica)
	ents, err := os.ReadDir(filepath.Join(dd, "spaces"))
	if err != nil {
		d.t.Fatal(err)
	}
	for _, e := range ents {
		d.spaces = append(d.spaces, e.Name())
	}
	sort.Strings(d.spaces)
	if len(d.spaces) != 3 {
		d.t.Fatalf("spaces %v", d.spaces)
	}
	base := map[string]uint64{}
	for _, s := range d.spaces {
		base[s] = d.archiveEnd(repo, s) + d.p.live
	}
	shipLog, replLog := filepath.Join(d.work, "ship.log"), filepath.Join(d.work, "replicated.log")
	// Engram writing, `wal watch` archiving, replication running (the
	// agent replicates on a schedule; here continuously, so the RPO of a
	// recovery from the replica is the replication lag of one run).
	d.startBG(filepath.Join(binDir, "engram-sim"), "run", "--dir", dd, "--rate", fmt.Sprint(d.p.rate), "--segment-size", d.p.segSize)
	d.startBG(filepath.Join(binDir, "memento"), "-r", repo, "wal", "watch", "--data-dir", dd, "--all", "--interval", "1s", "--ship-log", shipLog)
	d.startBG("bash", "-c", `while :; do memento -q -r "$REPO" replicate --to "$REPLICA" && echo ok >> "$1" || echo "replicate: exit $?"; done`, "replicate-loop", replLog)
	mid := d.waitArchived(base)
	d.memento(repo, "backup", "--data-dir", dd, "--all", "--tag", "live")
	replicated := d.replications()
	for s := range mid {
		mid[s] += d.p.live
	}
	d.waitArchived(mid)
	// the replica follows: two more complete runs, the second started after the backup
	d.waitFor("replication", func() bool { return d.replications() >= replicated+2 })
}

// crash stops the live processes, the writer with SIGKILL (a crash of the
// database), WAL archiving and replication with SIGTERM (they finish the
// file they are writing), and records what was written: each space's
// newest entry and a copy of its WAL, the ground truth. (With SIGKILL,
// `wal watch` can leave an archived segment record whose chunk is in no
// pack: the ranges then end before it and the next archive into that
// repository refuses the restored WAL as rewritten; see the report.)
//
// With DRILL_KILL_ARCHIVER=1 `wal watch` and replication get SIGKILL too
// (a crash of the whole host), to rehearse that case.
func (d *drill) crash() {
	d.t.Helper()
	_ = syscall.Kill(-d.bg[0].Process.Pid, syscall.SIGKILL)
	stop := syscall.SIGTERM
	if os.Getenv("DRILL_KILL_ARCHIVER") == "1" {
		stop = syscall.SIGKILL
	}
	for _, c := range d.bg[1:] {
		_ = syscall.Kill(-c.Process.Pid, stop)
	}
	for _, c := range d.bg {
		_ = c.Wait()
	}
	d.bg = nil
	dd := d.vars["DATA_DIR"]
	d.walCopy = filepath.Join(d.work, "truth")
	d.written = map[string]truthLine{}
	for _, s := range d.spaces {
		dst := filepath.Join(d.walCopy, "spaces", s)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			d.t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", filepath.Join(dd, "spaces", s, "wal"), dst).CombinedOutput(); err != nil {
			d.t.Fatalf("copy WAL: %v %s", err, out)
		}
		d.written[s] = d.truth(s, 0)
	}
	d.t.Logf("at the crash: written %v; %s pitr ranges: %s", d.written, d.spaces[0], d.must("memento", "-r", d.vars["REPO"], "pitr", "ranges", "--space", d.spaces[0]))
	if out, err := exec.Command("cp", "-a", filepath.Join(dd, "metadata.json"), d.walCopy).CombinedOutput(); err != nil {
		d.t.Fatalf("copy metadata: %v %s", err, out)
	}
}

// truth is engram-sim's ground truth of space as written, through seq
// (0: everything written).
func (d *drill) truth(space string, seq uint64) truthLine {
	d.t.Helper()
	args := []string{"truth", "--dir", d.walCopy, "--space", space}
	if seq > 0 {
		args = append(args, "--to-seq", fmt.Sprint(seq))
	}
	var l truthLine
	if err := json.Unmarshal([]byte(d.must("engram-sim", args...)), &l); err != nil {
		d.t.Fatal(err)
	}
	if seq > 0 && l.Sequence != seq {
		d.t.Fatalf("truth of %s to seq %d stopped at %d", space, seq, l.Sequence)
	}
	return l
}

// engram is a running `engram-sim serve`.
type engram struct {
	cmd    *exec.Cmd
	addr   string
	out    *bytes.Buffer
	mu     *sync.Mutex
	exited chan struct{} // closed when the process has been waited for
}

// serve starts Engram (engram-sim serve) on the data dir and waits until
// it has loaded (healthy or not); the caller stops it.
func (d *drill) serve(dir string) *engram {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "engram-sim"), "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	cmd.Env = d.environ()
	pr, pw := io.Pipe()
	e := &engram{cmd: cmd, out: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			e.mu.Lock()
			e.out.WriteString(sc.Text() + "\n")
			e.mu.Unlock()
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
	}()
	go func() { _ = cmd.Wait(); pw.Close(); close(e.exited) }() // the one Wait
	select {
	case e.addr = <-addr:
	case <-time.After(5 * time.Minute):
		e.stop()
		d.t.Fatalf("engram-sim serve did not listen: %s", e.output())
	}
	d.vars["ENGRAM"] = e.addr
	deadline := time.Now().Add(30 * time.Minute)
	for {
		var h struct {
			Status string `json:"status"`
			Loaded bool   `json:"loaded"`
		}
		if err := e.get("/api/v1/system/health", &h); err == nil && h.Loaded {
			return e
		}
		if time.Now().After(deadline) {
			e.stop()
			d.t.Fatalf("engram-sim serve did not load %s: %s", dir, e.output())
		}
		time.Sleep(50 * time.Millisecond) // polling a condition
	}
}

func (e *engram) output() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.out.String()
}

// get decodes the JSON answer of path (any status).
func (e *engram) get(path string, v any) error {
	resp, err := http.Get("http://" + e.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func (e *engram) stop() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(time.Minute):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
}

// checkServing requires Engram healthy and each space of want at exactly
// the wanted sequence and digest.
func (d *drill) checkServing(e *engram, want map[string]truthLine) {
	d.t.Helper()
	var h struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	if err := e.get("/api/v1/system/health", &h); err != nil || h.Status != "healthy" {
		d.t.Fatalf("recovered Engram not healthy (%v): %+v\n%s", err, h, e.output())
	}
	for s, w := range want {
		var got truthLine
		if err := e.get("/api/v1/spaces/"+s+"/digest", &got); err != nil {
			d.t.Fatal(err)
		}
		if got.Sequence != w.Sequence || got.Digest != w.Digest {
			d.t.Fatalf("space %s serves seq %d digest %s, ground truth seq %d digest %s", s, got.Sequence, got.Digest, w.Sequence, w.Digest)
		}
	}
}

// result is one drill's figures.
type result struct {
	scenario, target, size, load string
	rto                          time.Duration
	rpo                          time.Duration
	lost                         uint64 // entries written before the crash and not recovered
	archivedLost                 uint64 // of those, entries that had been archived (must be 0)
	note                         string
}

// figures compares what was recovered (per space) with what was written
// before the crash.
func (d *drill) figures(recovered map[string]truthLine, archived map[string]uint64) (rpo time.Duration, lost, archivedLost uint64) {
	for s, r := range recovered {
		w := d.written[s]
		if r.Sequence > w.Sequence {
			d.t.Fatalf("space %s recovered to seq %d, beyond the %d written", s, r.Sequence, w.Sequence)
		}
		lost += w.Sequence - r.Sequence
		if a := archived[s]; a > r.Sequence {
			archivedLost += a - r.Sequence
		}
		if gap := time.Duration(w.TimestampNS - r.TimestampNS); gap > rpo {
			rpo = gap
		}
	}
	return rpo, lost, archivedLost
}

// dayAfter: Engram writes again on the recovered data dir, archiving and
// backups resume (the runbook's resume block, or extra for a new primary),
// and the new history restores, equal to the live data dir.
func (d *drill) dayAfter(resume string, repoVar string) {
	d.t.Helper()
	dd := d.vars["DATA_DIR"]
	d.must("engram-sim", "run", "--dir", dd, "--rate", "0", "--entries", fmt.Sprint(d.p.dayAfter))
	d.sh(resume)
	saved := d.vars["REPO"]
	d.vars["REPO"] = d.vars[repoVar]
	d.sh("all/check-backups")
	d.vars["REPO"] = saved
	for _, s := range d.spaces {
		var live, restored truthLine
		if err := json.Unmarshal([]byte(d.must("engram-sim", "truth", "--dir", dd, "--space", s)), &live); err != nil {
			d.t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(d.must("engram-sim", "truth", "--dir", d.vars["SCRATCH"], "--space", s)), &restored); err != nil {
			d.t.Fatal(err)
		}
		if live != restored {
			d.t.Fatalf("the day after: space %s restores to %+v, the live data dir is at %+v", s, restored, live)
		}
	}
	// the replica has the new history too
	for _, s := range d.spaces {
		if got, want := d.archiveEnd(d.vars["REPLICA"], s), d.archiveEnd(d.vars[repoVar], s); got != want {
			d.t.Fatalf("the day after: replica archive of %s ends at %d, the primary's at %d", s, got, want)
		}
	}
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// damageBytes overwrites n bytes of file in the middle with garbage.
func damageBytes(t *testing.T, file string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5, 0x5A}, 16), st.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// encryptInPlace replaces every byte of file by garbage of the same size
// (what ransomware does), keeping the name.
func encryptInPlace(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = b[i] ^ 0x5c ^ byte(i*131)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
