package walreplay

import (
	"fmt"
	"strconv"
)

// SegmentName returns the file name of the segment whose first sequence is
// firstSeq: "wal-" + 16 lowercase hex digits + ".log".
func SegmentName(firstSeq uint64) string {
	return fmt.Sprintf("wal-%016x.log", firstSeq)
}

// ParseSegmentName is the inverse of SegmentName. It accepts exactly the
// names SegmentName produces (lowercase, 16 digits), so that every segment
// has one spelling and lexical order equals sequence order.
func ParseSegmentName(name string) (uint64, error) {
	const prefix, suffix = "wal-", ".log"
	if len(name) != len(prefix)+16+len(suffix) || name[:4] != prefix || name[20:] != suffix {
		return 0, fmt.Errorf("walreplay: %q is not a segment name (want wal-<16 hex>.log)", name)
	}
	hex := name[4:20]
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, fmt.Errorf("walreplay: %q is not a segment name (want 16 lowercase hex digits)", name)
		}
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("walreplay: segment name %q: %w", name, err)
	}
	return v, nil
}
