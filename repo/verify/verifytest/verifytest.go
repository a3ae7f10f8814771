// Package verifytest verifies snapshots for other packages' tests and
// checks the verdicts (tests only).
package verifytest

import (
	"context"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/verify"
)

// IDs verifies snapshots at level and fails the test if verification itself
// fails.
func IDs(t testing.TB, r *repo.Repository, level verify.Level, ids ...chunk.ID) []*verify.Verdict {
	t.Helper()
	vds, err := verify.VerifySnapshots(context.Background(), r, ids, verify.VerifyOptions{Level: level, TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("verify %s: %v", level, err)
	}
	return vds
}

// WantPass requires every verdict to have passed.
func WantPass(t testing.TB, vds ...*verify.Verdict) {
	t.Helper()
	for _, vd := range vds {
		if !vd.Passed {
			t.Fatalf("snapshot %s %s: want pass, got findings:\n%s", vd.Short(), vd.Level, FindingsText(vd))
		}
	}
}

// WantFinding requires a failed verdict with a finding at level whose text
// contains every one of want.
func WantFinding(t testing.TB, vd *verify.Verdict, level verify.Level, want ...string) {
	t.Helper()
	if vd.Passed {
		t.Fatalf("snapshot %s %s passed, want a finding at %s containing %q", vd.Short(), vd.Level, level, want)
	}
	for _, f := range vd.Findings {
		if f.Level != level {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(f.String(), w)
		}
		if ok {
			return
		}
	}
	t.Fatalf("snapshot %s: no %s finding containing %q in:\n%s", vd.Short(), level, want, FindingsText(vd))
}

// FindingsText lists a verdict's findings, one a line, indented.
func FindingsText(vd *verify.Verdict) string {
	var b strings.Builder
	for _, f := range vd.Findings {
		b.WriteString("\t" + f.String() + "\n")
	}
	return b.String()
}
