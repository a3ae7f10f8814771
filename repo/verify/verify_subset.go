package verify

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"memento/repo"
)

// Subset is one part of a rotation over the packs: the packs are split into
// Of parts by their ID (uniformly, since IDs are hashes), and an L2 run with
// a subset reads only part Part (0-based). Successive runs take successive
// parts, so after Of runs every pack has been read once, at 1/Of of the cost
// per run. Of == 0 means everything.
type Subset struct {
	Part, Of int
}

// ParseSubsetShare reads "10%" or "1/10" and returns the number of parts
// (10 for both). Shares are rounded to a whole number of parts.
func ParseSubsetShare(s string) (int, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("subset %q: want a share such as 10%% or 1/10", s)
	switch {
	case strings.HasSuffix(s, "%"):
		p, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || p <= 0 || p > 100 || math.IsNaN(p) || 100/p > 1<<20 {
			return 0, bad
		}
		return max(1, int(math.Round(100/p))), nil
	case strings.HasPrefix(s, "1/"):
		n, err := strconv.Atoi(s[2:])
		if err != nil || n < 1 || n > 1<<20 {
			return 0, bad
		}
		return n, nil
	}
	return 0, bad
}

// String is "k/n" with k 1-based, as stored in audit records.
func (s Subset) String() string {
	if s.Of == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Part+1, s.Of)
}

func parseSubsetRecord(s string) (Subset, bool) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return Subset{}, false
	}
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 1 || k < 1 || k > n {
		return Subset{}, false
	}
	return Subset{Part: k - 1, Of: n}, true
}

func (s Subset) selects(pack [32]byte) bool {
	return s.Of <= 1 || binary.LittleEndian.Uint64(pack[:8])%uint64(s.Of) == uint64(s.Part)
}

// NextSubset continues the rotation remembered in the audit trail: the part
// after the one the latest subset verification of the same share read.
func NextSubset(recs []repo.AuditRecord, of int) Subset {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Command != "verify" || recs[i].Subset == "" {
			continue
		}
		if s, ok := parseSubsetRecord(recs[i].Subset); ok && s.Of == of {
			return Subset{Part: (s.Part + 1) % of, Of: of}
		}
	}
	return Subset{Part: 0, Of: of}
}
