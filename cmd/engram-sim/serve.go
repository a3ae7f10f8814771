package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"memento/engram"
	"memento/walreplay"
)

// defaultServeAddr is where serve listens unless told otherwise: loopback
// only, so that a drill never exposes a recovered database by accident.
const defaultServeAddr = "127.0.0.1:7411"

type serveOpts struct {
	dataDir   string
	listen    string
	readyFile string
	tierCheck string
	workers   int
	out       io.Writer
	// listening, when set, is called with the bound address once the
	// server accepts connections (tests use it instead of parsing out).
	listening func(addr string)
}

func newServeCmd() *cobra.Command {
	var o serveOpts
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR [--listen 127.0.0.1:7411] [--ready-file F]",
		Short: "Open a data dir like a starting Engram and answer queries over HTTP (read-only)",
		Long: `serve is a running Engram to recover into: it opens DIR (as written by
generate or run, or restored by memento), replays each space's WAL from the
first entry present exactly as "engram-sim truth" does (so the digests it
serves equal truth's and memento restore's), checks checkpoint.json against
the WAL and the hot, warm and cold files' structure and checksums
(--tier-check full|quick|off), and answers over HTTP with JSON:

  GET /api/v1/system/health              200 {"status":"healthy",...} once every space
                                         replayed and verified; 503 with "reason"
                                         while loading or when a space failed
  GET /api/v1/spaces                     every space: last seq and timestamp, entries,
                                         memories, digest, checkpoint, status
  GET /api/v1/spaces/{id}                one space
  GET /api/v1/spaces/{id}/digest         {"space","sequence","timestamp_ns","digest",...}
                                         (the truth line format)
  GET /api/v1/spaces/{id}/count          {"space","sequence","count"}: live memories
  GET /api/v1/spaces/{id}/confidence     confidence histogram (?buckets=10)
  GET /api/v1/spaces/{id}/memories/{mid} one memory; 404 if absent or deleted

It prints "listening on ADDR" once it accepts connections (port 0 picks a
free port), loads in the background, writes --ready-file (JSON with the
address) once healthy and removes it on exit. It never writes to DIR.
SIGINT and SIGTERM shut it down cleanly (exit 0).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.dataDir == "" {
				return usageErrorf("--data-dir is required")
			}
			switch o.tierCheck {
			case tierCheckFull, tierCheckQuick, tierCheckOff:
			default:
				return usageErrorf("--tier-check %q: want full, quick or off", o.tierCheck)
			}
			if _, _, err := net.SplitHostPort(o.listen); err != nil {
				return usageErrorf("--listen %q: want HOST:PORT: %v", o.listen, err)
			}
			o.out = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", "", "Engram data dir to open (read-only)")
	f.StringVar(&o.listen, "listen", defaultServeAddr, "HOST:PORT to listen on (port 0: any free port)")
	f.StringVar(&o.readyFile, "ready-file", "", "write FILE (JSON with the address) once healthy; removed on exit")
	f.StringVar(&o.tierCheck, "tier-check", tierCheckFull, "tier file checks: full (structure and every CRC), quick (structure), off")
	f.IntVar(&o.workers, "workers", 0, "spaces loaded in parallel (default: GOMAXPROCS)")
	return cmd
}

// serve listens, loads the data dir in the background and answers until ctx
// is cancelled, then shuts the HTTP server down and waits for the loader.
func serve(ctx context.Context, o serveOpts) error {
	if o.out == nil {
		o.out = io.Discard
	}
	if o.workers <= 0 {
		o.workers = runtime.GOMAXPROCS(0)
	}
	if o.tierCheck == "" {
		o.tierCheck = tierCheckFull
	}
	fi, err := os.Stat(o.dataDir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %w (not a directory)", o.dataDir, errNotDataDir)
	}
	s := newSimServer(o.dataDir, o.tierCheck)
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	hs := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- hs.Serve(ln) }()
	fmt.Fprintf(o.out, "listening on %s\n", addr)
	if o.listening != nil {
		o.listening(addr)
	}

	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		s.load(loadCtx, o.workers)
		if loadCtx.Err() != nil {
			return
		}
		h, code := s.health()
		if code != http.StatusOK {
			fmt.Fprintf(o.out, "unhealthy: %s\n", h.Reason)
			slog.Error("serve: data dir did not load", "dir", o.dataDir, "reason", h.Reason)
			return
		}
		fmt.Fprintf(o.out, "healthy: %d spaces, %d entries, %d memories, loaded in %.3fs\n",
			h.Spaces, h.Entries, h.Memories, h.LoadSeconds)
		if o.readyFile != "" {
			if err := writeReadyFile(o.readyFile, addr, h); err != nil {
				slog.Error("serve: ready file", "err", err)
			}
		}
	}()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-srvErr:
	}
	cancelLoad()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil && serveErr == nil {
		serveErr = err
	}
	<-loaded
	if o.readyFile != "" {
		if err := os.Remove(o.readyFile); err != nil && !errors.Is(err, fs.ErrNotExist) && serveErr == nil {
			serveErr = err
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// writeReadyFile writes {"listen":ADDR,"pid":N,"spaces":N,...} via a
// temporary file and a rename, so a poller never reads half of it.
func writeReadyFile(path, addr string, h healthDoc) error {
	b, err := json.Marshal(struct {
		Listen   string `json:"listen"`
		PID      int    `json:"pid"`
		Spaces   int    `json:"spaces"`
		Entries  int64  `json:"entries"`
		Memories int    `json:"memories"`
	}{addr, os.Getpid(), h.Spaces, h.Entries, h.Memories})
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), false)
}

// Status of a space (spaceInfo.Status).
const (
	spaceLoading = "loading"
	spaceReady   = "ready"
	spaceFailed  = "failed"
)

// problem is why a space (or the data dir) failed to load, located as
// precisely as the check allows. Message is complete on its own: it names
// the space, the file and, for the WAL, the segment and byte offset.
type problem struct {
	Space   string `json:"space,omitempty"`
	Kind    string `json:"kind"`           // data_dir, metadata, checkpoint, wal, hot, warm, cold
	File    string `json:"file,omitempty"` // relative to the data dir, with slashes
	Segment string `json:"segment,omitempty"`
	Offset  *int64 `json:"offset,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	Message string `json:"message"`
}

// spaceInfo is a space as /api/v1/spaces shows it.
type spaceInfo struct {
	ID              string            `json:"id"`
	Status          string            `json:"status"`
	LastSeq         uint64            `json:"last_seq"`
	LastTimestampNS int64             `json:"last_timestamp_ns"`
	LastTime        string            `json:"last_time,omitempty"`
	FirstSeq        uint64            `json:"first_seq"`
	Entries         int64             `json:"entries"`
	Memories        int               `json:"memories"`
	Digest          string            `json:"digest,omitempty"`
	Checkpoint      engram.Checkpoint `json:"checkpoint"`
	Segments        int               `json:"segments"`
	// TornTail locates what a crash left at the end of the newest segment:
	// ignored, as a restarting database ignores (and truncates) it.
	TornTail    *tornTail `json:"torn_tail,omitempty"`
	LoadSeconds float64   `json:"load_seconds"`
	Error       *problem  `json:"error,omitempty"`
}

type simSpace struct {
	mu   sync.Mutex // guards st (a walreplay.State is not safe for concurrent use) and info
	info spaceInfo
	st   *walreplay.State
}

// simServer is the loaded data dir and its HTTP API.
type simServer struct {
	dataDir   string
	tierCheck string
	started   time.Time

	mu          sync.RWMutex
	discovered  bool
	done        bool
	loadSeconds float64
	dirProblems []problem // the data dir's own (metadata.json, spaces/)
	warnings    []string
	spaces      []*simSpace
	byID        map[string]*simSpace
}

func newSimServer(dataDir, tierCheck string) *simServer {
	return &simServer{dataDir: dataDir, tierCheck: tierCheck, started: time.Now(), byID: map[string]*simSpace{}}
}

// load discovers the spaces and loads them, workers at a time.
func (s *simServer) load(ctx context.Context, workers int) {
	ids, probs, warns := s.discover()
	s.mu.Lock()
	s.dirProblems, s.warnings = probs, warns
	for _, id := range ids {
		sp := &simSpace{info: spaceInfo{ID: id, Status: spaceLoading}}
		s.spaces = append(s.spaces, sp)
		s.byID[id] = sp
	}
	s.discovered = true
	spaces := s.spaces
	s.mu.Unlock()

	var g errgroup.Group
	g.SetLimit(workers)
	for _, sp := range spaces {
		g.Go(func() error {
			if ctx.Err() == nil {
				s.loadSpace(ctx, sp)
			}
			return nil
		})
	}
	g.Wait()
	s.mu.Lock()
	s.done = true
	s.loadSeconds = time.Since(s.started).Seconds()
	s.mu.Unlock()
}

// discover lists the spaces to serve: the directories of spaces/. The
// registry (metadata.json) must be present and valid; a space it lists
// without a directory, or a directory it does not list, is a warning (a
// point-in-time restore of one space into an empty dir brings the whole
// registry), not a failure.
func (s *simServer) discover() (ids []string, probs []problem, warns []string) {
	md, err := engram.ReadMetadata(s.dataDir)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg = fmt.Sprintf("%s: missing (%v?)", engram.MetadataName, errNotDataDir)
		}
		probs = append(probs, problem{Kind: "metadata", File: engram.MetadataName, Message: msg})
	}
	l, err := engram.ListSpaces(s.dataDir)
	if err != nil && l == nil {
		probs = append(probs, problem{Kind: "data_dir", File: engram.SpacesName, Message: err.Error()})
		return nil, probs, nil
	}
	if err != nil { // no spaces
		probs = append(probs, problem{Kind: "data_dir", File: engram.SpacesName, Message: err.Error()})
	}
	for _, b := range l.Bad {
		probs = append(probs, problem{Kind: "data_dir", File: engram.SpacesName, Message: b.Error()})
	}
	for _, sk := range l.Skipped {
		warns = append(warns, fmt.Sprintf("%s skipped: %s", sk.Path, sk.Reason))
	}
	if md != nil {
		for _, id := range md.IDs() {
			if !slices.Contains(l.Spaces, id) {
				warns = append(warns, fmt.Sprintf("space %s is listed in %s but has no directory", id, engram.MetadataName))
			}
		}
		for _, id := range l.Spaces {
			if !slices.Contains(md.IDs(), id) {
				warns = append(warns, fmt.Sprintf("space %s has a directory but is not listed in %s", id, engram.MetadataName))
			}
		}
	}
	return l.Spaces, probs, warns
}

// loadSpace replays one space and checks its checkpoint and tiers.
func (s *simServer) loadSpace(ctx context.Context, sp *simSpace) {
	start := time.Now()
	id := sp.info.ID
	info, st, p := s.replaySpace(ctx, id)
	if p == nil && ctx.Err() == nil {
		if err := checkTiers(s.dataDir, id, s.tierCheck); err != nil {
			p = tierProblem(id, err)
		}
	}
	info.LoadSeconds = time.Since(start).Seconds()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if p != nil {
		info.Status, info.Error = spaceFailed, p
		slog.Error("serve: space failed", "space", id, "err", p.Message)
	} else {
		info.Status = spaceReady
		sp.st = st
	}
	sp.info = info
}

func tierProblem(id string, err error) *problem {
	var te *tierError
	if !errors.As(err, &te) {
		return &problem{Space: id, Kind: "tiers", Message: fmt.Sprintf("space %s: %v", id, err)}
	}
	kind := strings.SplitN(strings.TrimPrefix(te.File, engram.SpaceRel(id)+"/"), "/", 2)[0]
	p := &problem{Space: id, Kind: kind, File: te.File, Message: fmt.Sprintf("space %s: %s tier: %v", id, kind, te)}
	if te.Offset >= 0 {
		p.Offset = &te.Offset
	}
	return p
}

// replaySpace replays the whole WAL of a space into a fresh state, as
// "engram-sim truth" does, and checks checkpoint.json against it.
func (s *simServer) replaySpace(ctx context.Context, id string) (spaceInfo, *walreplay.State, *problem) {
	info := spaceInfo{ID: id}
	walRel := engram.SpaceRel(id) + "/" + engram.WALName
	ckRel := engram.SpaceRel(id) + "/" + engram.CheckpointName

	ck, err := engram.ReadCheckpoint(engram.SpaceDir(s.dataDir, id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return info, nil, &problem{Space: id, Kind: "checkpoint", File: ckRel,
			Message: fmt.Sprintf("space %s: %s: %v", id, ckRel, strings.TrimPrefix(err.Error(), engram.CheckpointPath(s.dataDir, id)+": "))}
	}
	info.Checkpoint = ck

	l, err := walreplay.OpenLog(engram.WALDir(s.dataDir, id))
	if err != nil {
		return info, nil, &problem{Space: id, Kind: "wal", File: walRel, Message: fmt.Sprintf("space %s: %s: %v", id, walRel, err)}
	}
	segs := l.Segments()
	info.Segments = len(segs)
	st := walreplay.NewState()
	pos, err := l.Replay(ctx, walreplay.Target{}, st)
	if err != nil {
		if ctx.Err() != nil {
			return info, nil, &problem{Space: id, Kind: "wal", Message: fmt.Sprintf("space %s: loading interrupted", id)}
		}
		p := &problem{Space: id, Kind: "wal", File: walRel, Message: fmt.Sprintf("space %s: %s: %v", id, walRel, err)}
		var ce *walreplay.CorruptError
		if errors.As(err, &ce) {
			p.File, p.Segment, p.Seq = walRel+"/"+ce.Segment, ce.Segment, ce.Seq
			off := ce.Offset
			p.Offset = &off
			p.Message = fmt.Sprintf("space %s: %s: %v", id, p.File, err)
		}
		return info, nil, p
	}
	info.LastSeq, info.LastTimestampNS = pos.Seq, pos.TimestampNS
	if pos.Seq > 0 {
		info.LastTime = walreplay.FormatTime(pos.TimestampNS)
	}
	info.Entries, info.Memories = st.Applied(), st.Len()
	d := st.Digest()
	info.Digest = hex.EncodeToString(d[:])
	if first, ok := firstEntrySeq(segs); ok {
		info.FirstSeq = first
	}
	info.TornTail = findTornTail(segs)
	if p := checkCheckpoint(ctx, id, ck, l, segs, pos, ckRel); p != nil {
		return info, nil, p
	}
	return info, st, nil
}

// tornTail is an incomplete entry at the end of the newest segment.
type tornTail struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Reason  string `json:"reason"`
}

// findTornTail reads the newest segment (up to its listed size, as the
// replay did) for a torn tail; nil when it ends cleanly. Only called after
// a successful replay, so any other error cannot occur and is ignored.
func findTornTail(segs []walreplay.SegmentInfo) *tornTail {
	if len(segs) == 0 {
		return nil
	}
	last := segs[len(segs)-1]
	f, err := os.Open(last.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	r := walreplay.NewSegmentReader(io.NewSectionReader(f, 0, last.Size), last.Name)
	for {
		_, err := r.Next()
		if err == nil {
			continue
		}
		var ce *walreplay.CorruptError
		if errors.As(err, &ce) && errors.Is(err, walreplay.ErrTornTail) {
			return &tornTail{Segment: last.Name, Offset: ce.Offset, Reason: ce.Reason}
		}
		return nil
	}
}

// firstEntrySeq reads the sequence of the log's first entry from its header.
func firstEntrySeq(segs []walreplay.SegmentInfo) (uint64, bool) {
	for _, sg := range segs {
		if sg.Size < walreplay.HeaderSize {
			continue
		}
		if h, ok := readHeaderAt(sg.Path, 0); ok {
			return h.Seq, true
		}
		return 0, false
	}
	return 0, false
}

func readHeaderAt(path string, off int64) (walreplay.Header, bool) {
	f, err := os.Open(path)
	if err != nil {
		return walreplay.Header{}, false
	}
	defer f.Close()
	var b [walreplay.HeaderSize]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return walreplay.Header{}, false
	}
	h, reason := walreplay.DecodeHeader(b[:])
	return h, reason == ""
}

// checkCheckpoint checks that the tiers' position fits the WAL: the
// checkpoint is not beyond the WAL's last entry, the WAL does not start
// after it (entries between would be lost), and the entry at the
// checkpoint's sequence, when present, has the checkpoint's timestamp.
func checkCheckpoint(ctx context.Context, id string, ck engram.Checkpoint, l *walreplay.Log, segs []walreplay.SegmentInfo, pos walreplay.Position, ckRel string) *problem {
	fail := func(seg string, off int64, format string, a ...any) *problem {
		p := &problem{Space: id, Kind: "checkpoint", File: ckRel, Seq: ck.Sequence, Segment: seg,
			Message: fmt.Sprintf("space %s: %s: ", id, ckRel) + fmt.Sprintf(format, a...)}
		if seg != "" {
			p.Offset = &off
		}
		return p
	}
	if ck.Sequence > pos.Seq {
		if len(segs) == 0 {
			return fail("", 0, "checkpoint at seq %d is beyond the end of the WAL (no segments in %s)", ck.Sequence, engram.WALName)
		}
		last := segs[len(segs)-1]
		return fail(last.Name, last.Size, "checkpoint at seq %d is beyond the end of the WAL: the last entry is seq %d; segment %s ends at offset %d",
			ck.Sequence, pos.Seq, last.Name, last.Size)
	}
	if len(segs) > 0 && segs[0].FirstSeq > ck.Sequence+1 {
		return fail(segs[0].Name, 0, "the WAL starts at seq %d (segment %s offset 0), after the checkpoint at seq %d: entries %d..%d are in neither",
			segs[0].FirstSeq, segs[0].Name, ck.Sequence, ck.Sequence+1, segs[0].FirstSeq-1)
	}
	if ck.Sequence == 0 {
		return nil
	}
	i, off, err := l.SeekSeq(ctx, ck.Sequence)
	if err != nil {
		return nil // replay validated the log; a seek failure here says nothing about the checkpoint
	}
	h, ok := readHeaderAt(segs[i].Path, off)
	if ok && h.Seq == ck.Sequence && h.TimestampNS != ck.TimestampNS {
		return fail(segs[i].Name, off, "checkpoint says seq %d has timestamp %d, the WAL's entry (segment %s offset %d) has %d",
			ck.Sequence, ck.TimestampNS, segs[i].Name, off, h.TimestampNS)
	}
	return nil
}

// healthDoc is the body of /api/v1/system/health.
type healthDoc struct {
	Status string `json:"status"` // healthy, loading, unhealthy
	Reason string `json:"reason,omitempty"`
	// Loaded is true once every space finished loading (ready or failed):
	// "unhealthy" is answered as soon as one space fails, while others may
	// still be loading.
	Loaded      bool      `json:"loaded"`
	DataDir     string    `json:"data_dir"`
	Spaces      int       `json:"spaces"`
	Ready       int       `json:"ready"`
	Loading     []string  `json:"loading,omitempty"`
	Entries     int64     `json:"entries"`
	Memories    int       `json:"memories"`
	LoadSeconds float64   `json:"load_seconds,omitempty"`
	TierCheck   string    `json:"tier_check"`
	Problems    []problem `json:"problems,omitempty"`
	Warnings    []string  `json:"warnings,omitempty"`
}

func (s *simServer) health() (healthDoc, int) {
	s.mu.RLock()
	h := healthDoc{DataDir: s.dataDir, TierCheck: s.tierCheck, Spaces: len(s.spaces), Warnings: s.warnings}
	h.Problems = append(h.Problems, s.dirProblems...)
	discovered, done, loadSeconds := s.discovered, s.done, s.loadSeconds
	h.Loaded = done
	spaces := s.spaces
	s.mu.RUnlock()
	for _, sp := range spaces {
		sp.mu.Lock()
		switch sp.info.Status {
		case spaceReady:
			h.Ready++
			h.Entries += sp.info.Entries
			h.Memories += sp.info.Memories
		case spaceFailed:
			h.Problems = append(h.Problems, *sp.info.Error)
		default:
			h.Loading = append(h.Loading, sp.info.ID)
		}
		sp.mu.Unlock()
	}
	switch {
	case len(h.Problems) > 0:
		h.Status = "unhealthy"
		msgs := make([]string, len(h.Problems))
		for i, p := range h.Problems {
			msgs[i] = p.Message
		}
		h.Reason = strings.Join(msgs, "; ")
		if !done {
			h.Reason += fmt.Sprintf(" (still loading %d of %d spaces)", len(h.Loading), h.Spaces)
		}
		return h, http.StatusServiceUnavailable
	case !discovered:
		h.Status, h.Reason = "loading", "loading: reading metadata.json and spaces/"
		return h, http.StatusServiceUnavailable
	case !done || len(h.Loading) > 0:
		h.Status = "loading"
		h.Reason = fmt.Sprintf("loading: %d of %d spaces replayed and verified; still loading: %s",
			h.Ready, h.Spaces, strings.Join(h.Loading, ", "))
		return h, http.StatusServiceUnavailable
	}
	h.Status, h.LoadSeconds = "healthy", loadSeconds
	return h, http.StatusOK
}

func (s *simServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/system/health", func(w http.ResponseWriter, _ *http.Request) {
		h, code := s.health()
		writeJSON(w, code, h)
	})
	mux.HandleFunc("GET /api/v1/spaces", func(w http.ResponseWriter, _ *http.Request) {
		h, _ := s.health()
		s.mu.RLock()
		spaces := s.spaces
		s.mu.RUnlock()
		out := make([]spaceInfo, 0, len(spaces))
		for _, sp := range spaces {
			sp.mu.Lock()
			out = append(out, sp.info)
			sp.mu.Unlock()
		}
		writeJSON(w, http.StatusOK, struct {
			Status string      `json:"status"`
			Spaces []spaceInfo `json:"spaces"`
		}{h.Status, out})
	})
	mux.HandleFunc("GET /api/v1/spaces/{id}", s.withSpace(false, func(w http.ResponseWriter, _ *http.Request, sp *simSpace) {
		writeJSON(w, http.StatusOK, sp.info)
	}))
	mux.HandleFunc("GET /api/v1/spaces/{id}/digest", s.withSpace(true, func(w http.ResponseWriter, _ *http.Request, sp *simSpace) {
		writeJSON(w, http.StatusOK, struct {
			truthLine
			Entries  int64 `json:"entries"`
			Memories int   `json:"memories"`
		}{truthLine{Space: sp.info.ID, Sequence: sp.info.LastSeq, TimestampNS: sp.info.LastTimestampNS, Digest: sp.info.Digest},
			sp.info.Entries, sp.info.Memories})
	}))
	mux.HandleFunc("GET /api/v1/spaces/{id}/count", s.withSpace(true, func(w http.ResponseWriter, _ *http.Request, sp *simSpace) {
		writeJSON(w, http.StatusOK, map[string]any{"space": sp.info.ID, "sequence": sp.info.LastSeq, "count": sp.st.Len()})
	}))
	mux.HandleFunc("GET /api/v1/spaces/{id}/confidence", s.withSpace(true, func(w http.ResponseWriter, r *http.Request, sp *simSpace) {
		n := 10
		if q := r.URL.Query().Get("buckets"); q != "" {
			v, err := strconv.Atoi(q)
			if err != nil || v < 1 || v > 1000 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("buckets %q: want 1..1000", q))
				return
			}
			n = v
		}
		writeJSON(w, http.StatusOK, map[string]any{"space": sp.info.ID, "sequence": sp.info.LastSeq, "buckets": sp.st.ConfidenceHistogram(n)})
	}))
	mux.HandleFunc("GET /api/v1/spaces/{id}/memories/{mid...}", s.withSpace(true, func(w http.ResponseWriter, r *http.Request, sp *simSpace) {
		mid := r.PathValue("mid")
		p, ok := sp.st.Payload(mid)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("space %s: no memory %q", sp.info.ID, mid))
			return
		}
		writeJSON(w, http.StatusOK, memoryDoc(sp.info.ID, sp.st, mid, p))
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// withSpace resolves {id}: 404 for an unknown space; with needReady, 503
// (naming the reason) for a space that is loading or failed. fn runs with
// the space locked.
func (s *simServer) withSpace(needReady bool, fn func(http.ResponseWriter, *http.Request, *simSpace)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		s.mu.RLock()
		sp, ok := s.byID[id]
		discovered := s.discovered
		s.mu.RUnlock()
		if !ok {
			if !discovered {
				writeError(w, http.StatusServiceUnavailable, "loading: spaces not listed yet")
				return
			}
			writeError(w, http.StatusNotFound, fmt.Sprintf("no space %q", id))
			return
		}
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if needReady && sp.info.Status != spaceReady {
			msg := fmt.Sprintf("space %s: loading", id)
			if sp.info.Error != nil {
				msg = sp.info.Error.Message
			}
			writeError(w, http.StatusServiceUnavailable, msg)
			return
		}
		fn(w, r, sp)
	}
}

// jsonF32 renders a float32 with the shortest representation that reads
// back as the same float32; non-finite values (which JSON cannot express)
// as null, as walreplay's JSON export does.
type jsonF32 float32

func (f jsonF32) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 32), nil
}

type memoryJSON struct {
	Space       string    `json:"space"`
	ID          string    `json:"id"`
	Confidence  jsonF32   `json:"confidence"`
	Content     string    `json:"content"`
	Dim         int       `json:"dim"`
	Embedding   []jsonF32 `json:"embedding"`
	Sequence    uint64    `json:"sequence"` // of the entry that last wrote it
	TimestampNS int64     `json:"timestamp_ns"`
	// PayloadBLAKE3 is the BLAKE3-256 of the record's encoding, the bytes
	// the state digest hashes: two servers agree on a memory when these do.
	PayloadBLAKE3 string `json:"payload_blake3"`
	PayloadBytes  int    `json:"payload_bytes"`
}

func memoryDoc(space string, st *walreplay.State, id string, payload []byte) memoryJSON {
	rec, _ := st.Get(id)
	seq, ts, _ := st.Written(id)
	emb := make([]jsonF32, len(rec.Embedding))
	for i, f := range rec.Embedding {
		emb[i] = jsonF32(f)
	}
	sum := blake3.Sum256(payload)
	return memoryJSON{Space: space, ID: rec.ID, Confidence: jsonF32(rec.Confidence), Content: rec.Content,
		Dim: len(rec.Embedding), Embedding: emb, Sequence: seq, TimestampNS: ts,
		PayloadBLAKE3: hex.EncodeToString(sum[:]), PayloadBytes: len(payload)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
