package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"memento/engram"
	"memento/walreplay"
)

// startServe runs serve on 127.0.0.1:0 in the background and returns its
// base URL and a stop function that cancels it (as SIGTERM does) and
// returns serve's error.
func startServe(t *testing.T, o serveOpts) (base string, stop func() error) {
	t.Helper()
	if o.listen == "" {
		o.listen = "127.0.0.1:0"
	}
	if o.workers == 0 {
		o.workers = 2
	}
	var out bytes.Buffer
	o.out = &lockedWriter{w: &out}
	addr := make(chan string, 1)
	o.listening = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, o) }()
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start listening")
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("serve did not stop within 10 s")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return base, stop
}

// lockedWriter serialises writes (serve prints from two goroutines).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// getJSON fetches base+path, decodes the JSON body into v (when not nil) and
// returns the status code and the raw body.
func getJSON(t *testing.T, url string, v any) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, b)
		}
	}
	return resp.StatusCode, b
}

// waitLoaded polls the health endpoint until every space finished loading
// and returns the final answer.
func waitLoaded(t *testing.T, base string) (int, healthDoc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var h healthDoc
		code, body := getJSON(t, base+"/api/v1/system/health", &h)
		if h.Loaded {
			return code, h
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(h.Reason, "loading") || h.Status == "healthy" {
			t.Fatalf("loading answer %d %s", code, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still loading after 30 s: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// truthOut runs "engram-sim truth --dir D --space S" and decodes its line.
func truthOut(t *testing.T, dir, space string) truthLine {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"truth", "--dir", dir, "--space", space})
	if err := root.Execute(); err != nil {
		t.Fatalf("truth %s: %v", space, err)
	}
	var l truthLine
	if err := json.Unmarshal(out.Bytes(), &l); err != nil {
		t.Fatalf("truth output %q: %v", out.String(), err)
	}
	if l.timelineTag != (timelineTag{Timeline: 1}) {
		t.Fatalf("truth output %q: not on timeline 1", out.String())
	}
	l.timelineTag = timelineTag{} // serve's digest has no timeline fields
	return l
}

// liveDir generates a small data dir and continues it with run (live
// writes with wall-clock timestamps, checkpoints, warm rewrites, a cold
// segment), the kind of dir a drill restores.
func liveDir(t *testing.T, ids []string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	genSmall(t, dir, 3<<20, ids, 7, "", 0)
	o := runTestOpts(t, dir)
	o.dim, o.segSize, o.entries, o.rate, o.coldRows = 0, 0, 400, 0, 50
	if err := run(context.Background(), o); err != nil {
		t.Fatalf("run: %v", err)
	}
	return dir
}

// deletedID returns an id a MemoryDelete entry of the space removed and
// that is not live at the end.
func deletedID(t *testing.T, dir, space string, st *walreplay.State) string {
	t.Helper()
	segs, err := walreplay.ListSegments(engram.WALDir(dir, space))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		r := walreplay.NewSegmentReader(bytes.NewReader(b), s.Name)
		for {
			e, err := r.Next()
			if err != nil {
				break
			}
			if e.Type != walreplay.MemoryDelete {
				continue
			}
			id, err := walreplay.DecodeDelete(e.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if _, live := st.Payload(id); !live {
				return id
			}
		}
	}
	t.Fatalf("space %s: no deleted id", space)
	return ""
}

func replayState(t *testing.T, dir, space string) *walreplay.State {
	t.Helper()
	l, err := walreplay.OpenLog(engram.WALDir(dir, space))
	if err != nil {
		t.Fatal(err)
	}
	st := walreplay.NewState()
	if _, err := l.Replay(context.Background(), walreplay.Target{}, st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestServeHealthyDigestsCountsLookups(t *testing.T) {
	ids := []string{"space-a", "tenant_01"}
	dir := liveDir(t, ids)
	before := fileHashes(t, dir)
	readyFile := filepath.Join(t.TempDir(), "ready.json")

	base, stop := startServe(t, serveOpts{dataDir: dir, readyFile: readyFile})
	code, h := waitLoaded(t, base)
	if code != http.StatusOK || h.Status != "healthy" || h.Spaces != 2 || h.Ready != 2 || len(h.Problems) > 0 || h.TierCheck != "full" {
		t.Fatalf("health %d %+v", code, h)
	}
	// The ready file is written right after the load finishes.
	var ready struct {
		Listen string `json:"listen"`
		PID    int    `json:"pid"`
		Spaces int    `json:"spaces"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(readyFile)
		if err == nil {
			if err := json.Unmarshal(b, &ready); err != nil {
				t.Fatalf("ready file %q: %v", b, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ready file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if "http://"+ready.Listen != base || ready.PID != os.Getpid() || ready.Spaces != 2 {
		t.Errorf("ready file %+v, server at %s", ready, base)
	}

	var list struct {
		Status string      `json:"status"`
		Spaces []spaceInfo `json:"spaces"`
	}
	if code, body := getJSON(t, base+"/api/v1/spaces", &list); code != 200 || list.Status != "healthy" || len(list.Spaces) != 2 {
		t.Fatalf("spaces: %d %s", code, body)
	}
	var entries int64
	for i, id := range ids {
		tl := truthOut(t, dir, id)
		st := replayState(t, dir, id)
		si := list.Spaces[i]
		entries += si.Entries
		ck, err := readCheckpoint(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		if si.ID != id || si.Status != spaceReady || si.Digest != tl.Digest || si.LastSeq != tl.Sequence ||
			si.LastTimestampNS != tl.TimestampNS || si.Memories != st.Len() || si.Entries != int64(tl.Sequence) ||
			si.FirstSeq != 1 || si.Checkpoint != ck || si.TornTail != nil || si.Segments < 1 || si.LastTime != walreplay.FormatTime(tl.TimestampNS) {
			t.Errorf("space %s: %+v; truth %+v, %d live, checkpoint %+v", id, si, tl, st.Len(), ck)
		}

		var dg struct {
			truthLine
			Memories int `json:"memories"`
		}
		tl.DigestV2 = "" // serve's digest has no version 2
		if code, body := getJSON(t, base+"/api/v1/spaces/"+id+"/digest", &dg); code != 200 || dg.truthLine != tl || dg.Memories != st.Len() {
			t.Errorf("digest of %s: %d %s, truth %+v", id, code, body, tl)
		}
		var cnt struct {
			Space    string `json:"space"`
			Sequence uint64 `json:"sequence"`
			Count    int    `json:"count"`
		}
		if code, body := getJSON(t, base+"/api/v1/spaces/"+id+"/count", &cnt); code != 200 || cnt.Count != st.Len() ||
			cnt.Space != id || cnt.Sequence != tl.Sequence {
			t.Errorf("count of %s: %d %s, want %d", id, code, body, st.Len())
		}
		var hist struct {
			Buckets []int `json:"buckets"`
		}
		if code, body := getJSON(t, base+"/api/v1/spaces/"+id+"/confidence", &hist); code != 200 || !slices.Equal(hist.Buckets, st.ConfidenceHistogram(10)) {
			t.Errorf("confidence of %s: %d %s", id, code, body)
		}

		// Every live memory is found with its record; spot-check a few.
		n := 0
		st.Each(func(mid string, p []byte) error {
			if n++; n > 5 {
				return io.EOF
			}
			rec, _ := walreplay.DecodeRecord(p)
			seq, ts, _ := st.Written(mid)
			var m struct {
				ID            string     `json:"id"`
				Space         string     `json:"space"`
				Confidence    float32    `json:"confidence"`
				Content       string     `json:"content"`
				Dim           int        `json:"dim"`
				Embedding     []*float32 `json:"embedding"`
				Sequence      uint64     `json:"sequence"`
				TimestampNS   int64      `json:"timestamp_ns"`
				PayloadBLAKE3 string     `json:"payload_blake3"`
				PayloadBytes  int        `json:"payload_bytes"`
			}
			code, body := getJSON(t, base+"/api/v1/spaces/"+id+"/memories/"+mid, &m)
			sum := blake3.Sum256(p)
			if code != 200 || m.ID != mid || m.Space != id || m.Confidence != rec.Confidence || m.Content != rec.Content ||
				m.Dim != len(rec.Embedding) || len(m.Embedding) != m.Dim || m.Sequence != seq || m.TimestampNS != ts ||
				m.PayloadBLAKE3 != hex.EncodeToString(sum[:]) || m.PayloadBytes != len(p) {
				t.Errorf("memory %s/%s: %d %.300s", id, mid, code, body)
			}
			for j, f := range m.Embedding {
				if f == nil || *f != rec.Embedding[j] {
					t.Errorf("memory %s/%s: embedding[%d] = %v, want %v", id, mid, j, f, rec.Embedding[j])
					break
				}
			}
			return nil
		})
		for _, mid := range []string{"mem-0000000000000000", deletedID(t, dir, id, st)} {
			if code, body := getJSON(t, base+"/api/v1/spaces/"+id+"/memories/"+mid, nil); code != http.StatusNotFound ||
				!strings.Contains(string(body), mid) {
				t.Errorf("absent or deleted memory %s/%s: %d %s", id, mid, code, body)
			}
		}
	}
	if h.Entries != entries {
		t.Errorf("health says %d entries, spaces %d", h.Entries, entries)
	}
	for _, p := range []string{"/api/v1/spaces/nope/digest", "/api/v1/spaces/nope", "/api/v1/nothing"} {
		if code, body := getJSON(t, base+p, nil); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if code, body := getJSON(t, base+"/api/v1/spaces/space-a/confidence?buckets=0", nil); code != http.StatusBadRequest {
		t.Errorf("buckets=0: %d %s", code, body)
	}

	// Shut down as SIGTERM does: clean, the ready file gone, the data dir
	// untouched.
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(readyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file after shutdown: %v", err)
	}
	if _, err := http.Get(base + "/api/v1/system/health"); err == nil {
		t.Error("still answering after shutdown")
	}
	if after := fileHashes(t, dir); !maps.Equal(before, after) {
		t.Errorf("serve changed the data dir: %d files before, %d after", len(before), len(after))
	}
}

// flipByte XORs the byte at off of path with 0x40.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// expectUnhealthy serves dir and checks that health is 503 "unhealthy"
// with one problem for space whose message contains every want, and that
// the other spaces still serve.
func expectUnhealthy(t *testing.T, dir, space, tierCheck string, want ...string) problem {
	t.Helper()
	before := fileHashes(t, dir)
	base, stop := startServe(t, serveOpts{dataDir: dir, tierCheck: tierCheck})
	code, h := waitLoaded(t, base)
	if code != http.StatusServiceUnavailable || h.Status != "unhealthy" || len(h.Problems) != 1 || h.Problems[0].Space != space {
		t.Fatalf("health %d %+v", code, h)
	}
	p := h.Problems[0]
	for _, w := range append(want, "space "+space) {
		if !strings.Contains(h.Reason, w) || !strings.Contains(p.Message, w) {
			t.Errorf("reason %q does not name %q", h.Reason, w)
		}
	}
	var e struct{ Error string }
	if code, body := getJSON(t, base+"/api/v1/spaces/"+space+"/digest", &e); code != http.StatusServiceUnavailable || e.Error != p.Message {
		t.Errorf("digest of the failed space: %d %s", code, body)
	}
	if code, body := getJSON(t, base+"/api/v1/spaces/"+space+"/memories/x", nil); code != http.StatusServiceUnavailable {
		t.Errorf("memory of the failed space: %d %s", code, body)
	}
	var list struct{ Spaces []spaceInfo }
	getJSON(t, base+"/api/v1/spaces", &list)
	for _, si := range list.Spaces {
		if si.ID == space && (si.Status != spaceFailed || si.Error == nil || si.Error.Message != p.Message) ||
			si.ID != space && si.Status != spaceReady {
			t.Errorf("space %+v", si)
		}
		if si.ID != space {
			if code, body := getJSON(t, base+"/api/v1/spaces/"+si.ID+"/digest", nil); code != 200 {
				t.Errorf("digest of healthy %s: %d %s", si.ID, code, body)
			}
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if after := fileHashes(t, dir); !maps.Equal(before, after) {
		t.Error("serve changed the damaged data dir")
	}
	return p
}

func TestServeDamage(t *testing.T) {
	ids := []string{"space-a", "space-b"}
	pristine := filepath.Join(t.TempDir(), "pristine")
	genSmall(t, pristine, 3<<20, ids, 11, "", 0)
	fresh := func(t *testing.T) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.CopyFS(dir, os.DirFS(pristine)); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("wal", func(t *testing.T) {
		dir := fresh(t)
		segs, err := walreplay.ListSegments(engram.WALDir(dir, "space-a"))
		if err != nil {
			t.Fatal(err)
		}
		// A payload byte of an early entry: a CRC mismatch that is not
		// the last entry, so corruption, not a torn tail.
		ents := walEntries(t, dir, "space-a")
		off := ents[0].size + ents[1].size + 40 // inside entry 3's payload
		flipByte(t, segs[0].Path, off)
		p := expectUnhealthy(t, dir, "space-a", tierCheckFull, "spaces/space-a/wal/"+segs[0].Name,
			"segment "+segs[0].Name, "offset", "crc mismatch")
		if p.Kind != "wal" || p.Segment != segs[0].Name || p.Offset == nil || *p.Offset != ents[0].size+ents[1].size || p.Seq != 3 ||
			p.File != "spaces/space-a/wal/"+segs[0].Name {
			t.Errorf("problem %+v (offset %v)", p, p.Offset)
		}
	})

	t.Run("checkpoint-beyond-wal", func(t *testing.T) {
		dir := fresh(t)
		ents := walEntries(t, dir, "space-b")
		last := ents[len(ents)-1]
		if err := writeCheckpoint(dir, "space-b", engram.Checkpoint{Sequence: last.seq + 5, TimestampNS: last.ts + 1}, false); err != nil {
			t.Fatal(err)
		}
		p := expectUnhealthy(t, dir, "space-b", tierCheckFull, "spaces/space-b/checkpoint.json", "beyond the end of the WAL", "segment wal-", "offset")
		if p.Kind != "checkpoint" || p.File != "spaces/space-b/checkpoint.json" || p.Segment == "" || p.Offset == nil {
			t.Errorf("problem %+v", p)
		}
	})

	t.Run("checkpoint-timestamp", func(t *testing.T) {
		dir := fresh(t)
		ck, err := readCheckpoint(dir, "space-a")
		if err != nil {
			t.Fatal(err)
		}
		ck.TimestampNS++
		if err := writeCheckpoint(dir, "space-a", ck, false); err != nil {
			t.Fatal(err)
		}
		expectUnhealthy(t, dir, "space-a", tierCheckFull, "spaces/space-a/checkpoint.json", "has timestamp")
	})

	t.Run("checkpoint-garbled", func(t *testing.T) {
		dir := fresh(t)
		if err := os.WriteFile(engram.CheckpointPath(dir, "space-a"), []byte(`{"sequence": 3`), 0o644); err != nil {
			t.Fatal(err)
		}
		expectUnhealthy(t, dir, "space-a", tierCheckFull, "spaces/space-a/checkpoint.json")
	})

	t.Run("warm", func(t *testing.T) {
		dir := fresh(t)
		path := engram.WarmPath(dir, "space-b")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(3)
		for isZero(b[n*pageSize : (n+1)*pageSize]) {
			n++
		}
		flipByte(t, path, n*pageSize+200)
		// quick checks the structure only and does not read the pages.
		base, stop := startServe(t, serveOpts{dataDir: dir, tierCheck: tierCheckQuick})
		if code, h := waitLoaded(t, base); code != 200 {
			t.Errorf("quick: %d %+v", code, h)
		}
		stop()
		p := expectUnhealthy(t, dir, "space-b", tierCheckFull, "spaces/space-b/warm/warm_tier.dat", "crc mismatch")
		if p.Kind != "warm" || p.Offset == nil || *p.Offset != n*pageSize {
			t.Errorf("problem %+v", p)
		}
		// The check off: nothing looked at.
		base, stop = startServe(t, serveOpts{dataDir: dir, tierCheck: tierCheckOff})
		if code, h := waitLoaded(t, base); code != 200 {
			t.Errorf("off: %d %+v", code, h)
		}
		stop()
	})

	t.Run("warm-size", func(t *testing.T) {
		dir := fresh(t)
		f, err := os.OpenFile(engram.WarmPath(dir, "space-a"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("x"))
		f.Close()
		expectUnhealthy(t, dir, "space-a", tierCheckQuick, "spaces/space-a/warm/warm_tier.dat", "not a whole number")
	})

	t.Run("cold", func(t *testing.T) {
		dir := fresh(t)
		path := filepath.Join(engram.ColdDir(dir, "space-a"), engram.ColdSegmentName(2))
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		flipByte(t, path, fi.Size()/2) // inside the embeddings column
		p := expectUnhealthy(t, dir, "space-a", tierCheckFull, "spaces/space-a/cold/seg-000002.col", "column 5: crc mismatch")
		if p.Kind != "cold" || p.Offset == nil {
			t.Errorf("problem %+v", p)
		}
	})

	t.Run("cold-header", func(t *testing.T) {
		dir := fresh(t)
		flipByte(t, filepath.Join(engram.ColdDir(dir, "space-b"), engram.ColdSegmentName(1)), 1)
		expectUnhealthy(t, dir, "space-b", tierCheckQuick, "spaces/space-b/cold/seg-000001.col offset 0", "bad magic")
	})

	t.Run("hot", func(t *testing.T) {
		dir := fresh(t)
		path := filepath.Join(engram.HotDir(dir, "space-a"), engram.HotMemtable)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if binary.LittleEndian.Uint32(b[4:]) == 0 {
			t.Fatal("empty memtable")
		}
		if err := os.WriteFile(path, b[:len(b)-3], 0o644); err != nil {
			t.Fatal(err)
		}
		expectUnhealthy(t, dir, "space-a", tierCheckQuick, "spaces/space-a/hot/memtable.bin", "runs past the end")
	})

	t.Run("hot-stats", func(t *testing.T) {
		dir := fresh(t)
		if err := os.WriteFile(filepath.Join(engram.HotDir(dir, "space-b"), engram.HotStats), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		expectUnhealthy(t, dir, "space-b", tierCheckQuick, "spaces/space-b/hot/stats.json")
	})
}

func TestServeNotADataDir(t *testing.T) {
	empty := t.TempDir()
	base, _ := startServe(t, serveOpts{dataDir: empty})
	code, h := waitLoaded(t, base)
	if code != http.StatusServiceUnavailable || h.Status != "unhealthy" || !strings.Contains(h.Reason, "metadata.json") ||
		!strings.Contains(h.Reason, "no spaces/ directory") {
		t.Errorf("empty dir: %d %+v", code, h)
	}
	if err := serve(context.Background(), serveOpts{dataDir: filepath.Join(empty, "missing"), listen: "127.0.0.1:0"}); err == nil {
		t.Error("serve of a missing dir succeeded")
	}
	if code := execute([]string{"serve", "--data-dir", empty, "--tier-check", "some"}); code != exitUsage {
		t.Errorf("bad --tier-check: exit %d", code)
	}
	if code := execute([]string{"serve"}); code != exitUsage {
		t.Errorf("no --data-dir: exit %d", code)
	}
}

// TestServeHealthWhileLoading checks the answer before the load finishes.
func TestServeHealthWhileLoading(t *testing.T) {
	s := newSimServer(t.TempDir(), tierCheckFull)
	if h, code := s.health(); code != http.StatusServiceUnavailable || h.Status != "loading" || !strings.Contains(h.Reason, "loading") {
		t.Errorf("before discovery: %d %+v", code, h)
	}
	s.discovered = true
	sp := &simSpace{info: spaceInfo{ID: "space-a", Status: spaceLoading}}
	s.spaces, s.byID["space-a"] = []*simSpace{sp}, sp
	if h, code := s.health(); code != http.StatusServiceUnavailable || h.Status != "loading" || !strings.Contains(h.Reason, "still loading: space-a") {
		t.Errorf("while loading: %d %+v", code, h)
	}
}

// TestServeAfterCrash serves a dir that run left with torn tails (what a
// crash-consistent copy holds): healthy, the torn tails reported, the
// digests those of the complete entries.
func TestServeAfterCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	o := runTestOpts(t, dir)
	o.crashAfter, o.rate = 150, 0
	var ce *exitCodeError
	if err := run(context.Background(), o); !errors.As(err, &ce) || ce.code != exitCrash {
		t.Fatalf("run: %v, want a simulated crash", err)
	}
	base, _ := startServe(t, serveOpts{dataDir: dir})
	if code, h := waitLoaded(t, base); code != http.StatusOK {
		t.Fatalf("health %d %+v", code, h)
	}
	for _, id := range o.newIDs {
		var si spaceInfo
		getJSON(t, base+"/api/v1/spaces/"+id, &si)
		l, err := walreplay.OpenLog(engram.WALDir(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tl := truthOut(t, dir, id)
		if si.TornTail == nil || !sum.TornTail || si.TornTail.Segment != sum.TornSegment || si.TornTail.Offset != sum.TornOffset ||
			si.Digest != tl.Digest || si.LastSeq != sum.LastSeq {
			t.Errorf("%s: %+v (torn %+v); verify %+v; truth %+v", id, si, si.TornTail, sum, tl)
		}
	}
}
