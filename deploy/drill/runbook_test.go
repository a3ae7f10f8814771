package drill

import (
	"sort"
	"strings"
	"testing"
)

// drilled is every runbook block the drills run. A block added to the
// runbook must be drilled (added here and run by a scenario), and a block
// the drills need must be in the runbook: the runbook stays true.
var drilled = []string{
	"lib/functions",
	"all/verify", "all/resume", "all/check-backups",
	"corruption/detect", "corruption/restore",
	"loss/detect", "loss/restore",
	"deletion/detect-space", "deletion/restore-space", "deletion/detect-write", "deletion/restore-at", "deletion/timelines",
	"datacenter/detect", "datacenter/restore", "datacenter/new-primary",
	"ransomware/detect", "ransomware/restore", "ransomware/replica",
}

func TestRunbookBlocksAreDrilled(t *testing.T) {
	rb := loadRunbook(t)
	var have []string
	for k, body := range rb {
		have = append(have, k)
		if strings.TrimSpace(body) == "" {
			t.Errorf("runbook block %s is empty", k)
		}
	}
	want := append([]string(nil), drilled...)
	sort.Strings(have)
	sort.Strings(want)
	if strings.Join(have, " ") != strings.Join(want, " ") {
		t.Fatalf("runbook blocks %v, drilled %v", have, want)
	}
}
