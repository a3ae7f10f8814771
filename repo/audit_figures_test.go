package repo_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/repotest"
)

// TestAuditFiguresExact: integer figures survive an audit record's round trip
// through the repository exactly over the whole int64/uint64 range (they were
// float64: a timestamp_ns of ...748925 came back as ...749000).
func TestAuditFiguresExact(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	in := repo.Figures{"timestamp_ns": repo.Int(int64(1796445336242748925)), "last_seq": repo.Int(uint64(math.MaxUint64)),
		"neg": repo.Int(int64(math.MinInt64)), "seconds": repo.Float(0.123456789), "whole": repo.Float(3), "nan": repo.Float(math.NaN())}
	if _, err := tr.AppendAudit(ctx, repo.AuditRecord{Command: "restore", Figures: in}); err != nil {
		t.Fatal(err)
	}
	recs, bad, err := tr.AuditLog(ctx, time.Time{})
	if err != nil || len(bad) != 0 || len(recs) != 1 {
		t.Fatalf("%d records, %v, %v", len(recs), bad, err)
	}
	f := recs[0].Figures
	if got := f["timestamp_ns"].Int64(); got != 1796445336242748925 {
		t.Errorf("timestamp_ns %d", got)
	}
	if got := f["last_seq"].Uint64(); got != math.MaxUint64 {
		t.Errorf("last_seq %d", got)
	}
	if got := f["neg"].Int64(); got != math.MinInt64 {
		t.Errorf("neg %d", got)
	}
	if got := f["seconds"].Float64(); got != 0.123456789 || f["seconds"].IsInt() {
		t.Errorf("seconds %v", f["seconds"])
	}
	if !f["whole"].IsInt() || f["whole"].String() != "3" || f["nan"].String() != "0" {
		t.Errorf("whole %v nan %v", f["whole"], f["nan"])
	}
}

// TestAuditRecordGoldenFloat64: a record written by the float64 figures
// (testdata/audit-v1-float64.json, bytes of that code) still reads, with
// its numbers as written, and writes back the same numbers.
func TestAuditRecordGoldenFloat64(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "audit-v1-float64.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec repo.AuditRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	f := rec.Figures
	if rec.Version != 1 || rec.Command != "restore" || f["seq"].Int64() != 123456 || f["bytes"].Int64() != 127562345 ||
		f["timestamp_ns"].Int64() != 1796445336242749000 || f["seconds"].Float64() != 0.123456789 || f["l2_mb_per_s"].Float64() != 1234.5678 {
		t.Fatalf("read %+v", rec)
	}
	out, err := json.Marshal(rec.Figures)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"archived_segments":3,"bytes":127562345,"l2_mb_per_s":1234.5678,"seconds":0.123456789,"seq":123456,"timestamp_ns":1796445336242749000}`; string(out) != want {
		t.Errorf("written back as %s", out)
	}
	for _, bad := range []string{`{"figures":{"x":"12"}}`, `{"figures":{"x":true}}`, `{"figures":{"x":[1]}}`} {
		var r repo.AuditRecord
		if err := json.Unmarshal([]byte(bad), &r); !errors.Is(err, repo.ErrFormat) {
			t.Errorf("%s: %v, want a format error", bad, err)
		}
	}
}
