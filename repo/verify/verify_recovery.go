package verify

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"

	"memento/repo/restore"
	"memento/walreplay"
)

// QueryReport is what L4 asks of the replayed state, the way an operator
// would check a recovered database: how many memories, whether sampled ids
// can be looked up, and how confidence is distributed.
type QueryReport struct {
	Seq    uint64 `json:"seq"`
	Digest string `json:"digest"`
	// DigestKind names Digest's definition: "v1" or "lthash16"
	// (docs/engram-format.md, "State digest"), as the snapshot records it.
	DigestKind string   `json:"digest_kind"`
	Memories   int      `json:"memories"`
	Bytes      int64    `json:"bytes"`
	Sampled    int      `json:"sampled"`
	LookupsOK  int      `json:"lookups_ok"`
	Histogram  []int    `json:"confidence_histogram"` // 10 buckets over [0, 1]
	Failures   []string `json:"failures,omitempty"`
}

// recovery is L4: restore into a temporary directory (Restore verifies
// every chunk and every file's BLAKE3 while writing, so this includes L2),
// L3's checks on the restored files, WAL replay to the manifest's WAL end,
// the state digest against the one recorded at backup, and query checks.
// The temporary directory is removed whatever happens.
func (v *Verifier) recovery(ctx context.Context, w *SnapWalk, vd *Verdict) error {
	sn := w.sn
	dir, err := os.MkdirTemp(v.opts.TempDir, "memento-verify-")
	if err != nil {
		return fmt.Errorf("L4 temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	target := filepath.Join(dir, "data")
	res, err := v.restore(ctx, sn, target, restore.RestoreOptions{Progress: v.opts.Progress})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		vd.fail(L4, "restore", "%v", err)
		return nil
	}
	vd.Figures["restore_seconds"] = res.Seconds
	vd.Figures["restored_bytes"] = float64(res.Bytes)
	vd.note("L4: restored %s (%s) into a temporary directory in %.2fs, every chunk and file BLAKE3 verified",
		english.Plural(int(res.Files), "file", ""), humanize.IBytes(res.Bytes), res.Seconds)
	if sn.Space == "" {
		vd.note("L4: a snapshot of plain paths: the verified restore is the recovery test")
		return nil
	}
	spaceDir := filepath.Join(target, "spaces", sn.Space)
	walDir := filepath.Join(spaceDir, "wal")
	segs, err := restoredSegments(ctx, walDir)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		vd.fail(L3, "WAL", "%v", err)
	}
	cp, err := os.ReadFile(filepath.Join(spaceDir, "checkpoint.json"))
	cpPresent := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		vd.fail(L3, "space "+sn.Space, "checkpoint.json: %v", err)
	}
	checkEngram(vd, L3, sn, w.types, segs, cp, cpPresent)

	e := sn.Engram
	what := "space " + sn.Space
	if e == nil || e.StateDigest == "" {
		vd.fail(L4, what, "no recorded digest: the manifest holds no state digest to prove the replay against")
	}
	log, err := walreplay.OpenLog(walDir)
	if err != nil {
		vd.fail(L4, what, "replay: %v", err)
		return nil
	}
	st := walreplay.NewState()
	kind := ""
	if e != nil {
		kind = e.StateDigestKind
	}
	var t walreplay.Target
	if e != nil && e.WALEnd.Seq > 0 {
		end := e.WALEnd.Seq
		t.ToSeq = &end
	}
	pos, err := log.Replay(ctx, t, st)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		vd.fail(L4, what, "replay: %v", err)
		return nil
	}
	d, err := st.DigestOf(kind)
	if err != nil {
		vd.fail(L4, what, "state digest: %v", err)
		return nil
	}
	digest := hex.EncodeToString(d[:])
	vd.Figures["replayed_entries"] = float64(st.Applied())
	if e != nil && pos.Seq != e.WALEnd.Seq {
		vd.fail(L4, what, "replay stopped at seq %d, the WAL end recorded at backup is %d", pos.Seq, e.WALEnd.Seq)
	}
	if e != nil && e.StateDigest != "" {
		if digest != e.StateDigest {
			vd.fail(L4, what, "state digest (%s) at seq %d is %s, the backup recorded %s", walreplay.DigestKindName(kind), pos.Seq, digest, e.StateDigest)
		} else {
			vd.note("L4: replayed %d entries to seq %d: state digest (%s) %s matches the one recorded at backup", st.Applied(), pos.Seq, walreplay.DigestKindName(kind), digest[:16])
		}
	}
	q := queryChecks(st, pos.Seq, digest, v.opts.Samples, sn.ID)
	q.DigestKind = walreplay.DigestKindName(kind)
	vd.Query = q
	for _, f := range q.Failures {
		vd.fail(L4, what, "query: %s", f)
	}
	vd.note("L4: %d memories (%s); %d of %d sampled lookups ok; confidence histogram (10 buckets over [0,1]) %v",
		q.Memories, humanize.IBytes(uint64(q.Bytes)), q.LookupsOK, q.Sampled, q.Histogram)
	return nil
}

// restoredSegments checks every segment of a restored WAL directory.
func restoredSegments(ctx context.Context, walDir string) ([]*segResult, error) {
	list, err := walreplay.ListSegments(walDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*segResult
	for _, s := range list {
		r := &segResult{name: s.Name, nameSeq: s.FirstSeq}
		f, err := os.Open(s.Path)
		if err != nil {
			r.readErr = err
		} else {
			r.sum, r.err = walreplay.VerifySegment(ctx, io.LimitReader(f, s.Size), s.Name)
			f.Close()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		out = append(out, r)
	}
	return out, nil
}

// queryChecks looks up a reproducible random sample of ids (seeded by the
// snapshot ID) and builds the confidence histogram.
func queryChecks(st *walreplay.State, seq uint64, digest string, samples int, seed [32]byte) *QueryReport {
	q := &QueryReport{Seq: seq, Digest: digest, Memories: st.Len(), Bytes: st.Bytes(), Histogram: st.ConfidenceHistogram(10)}
	sum := 0
	for _, n := range q.Histogram {
		sum += n
	}
	if sum != q.Memories {
		q.Failures = append(q.Failures, fmt.Sprintf("confidence histogram counts %d memories, the state holds %d", sum, q.Memories))
	}
	ids := make([]string, 0, st.Len())
	_ = st.Each(func(id string, _ []byte) error {
		ids = append(ids, id)
		return nil
	})
	rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:16])))
	n := min(samples, len(ids))
	for _, i := range rng.Perm(len(ids))[:n] {
		id := ids[i]
		q.Sampled++
		rec, ok := st.Get(id)
		wseq, _, ok2 := st.Written(id)
		switch {
		case !ok || !ok2:
			q.Failures = append(q.Failures, fmt.Sprintf("lookup of %q found nothing", id))
		case rec.ID != id:
			q.Failures = append(q.Failures, fmt.Sprintf("lookup of %q returned a record of %q", id, rec.ID))
		case wseq > seq:
			q.Failures = append(q.Failures, fmt.Sprintf("%q was written at seq %d, after the replay's end %d", id, wseq, seq))
		default:
			q.LookupsOK++
		}
	}
	return q
}
