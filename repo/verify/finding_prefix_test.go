package verify

import (
	"testing"

	"memento/repo"
)

// A finding about a pack whose error already names the pack says it once
// ("pack 1a2b3c4d: blob ...", not "pack 1a2b3c4d: pack 1a2b3c4d: blob ...").
func TestFindingNamesWhatOnce(t *testing.T) {
	var v Verdict
	err := repo.Corruptf("pack 1a2b3c4d", "blob 99 at offset 10: short read")
	v.fail(L2, "pack 1a2b3c4d", "%v", err)
	v.fail(L2, "pack 1a2b3c4d", "%v (%d chunks of this snapshot)", err, 3)
	v.fail(L1, "snapshot 5e6f", "%v", err)
	want := []string{
		"blob 99 at offset 10: short read",
		"blob 99 at offset 10: short read (3 chunks of this snapshot)",
		"pack 1a2b3c4d: blob 99 at offset 10: short read",
	}
	for i, f := range v.Findings {
		if f.Message != want[i] {
			t.Errorf("finding %d: %q, want %q", i, f.Message, want[i])
		}
	}
}
