package walreplay

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseTime parses a point in time as WAL timestamps are written: either an
// integer of Unix nanoseconds, or RFC 3339 with at most 9 fractional digits
// (nanoseconds are the WAL's resolution; more digits would be silently
// rounded, so they are refused). Times outside the int64 nanosecond range
// (years 1677..2262) are refused.
func ParseTime(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("walreplay: empty time")
	}
	if isInteger(s) {
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("walreplay: time %q: %w", s, err)
		}
		return ns, nil
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		n := 0
		for j := i + 1; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
			n++
		}
		if n == 0 || n > 9 {
			return 0, fmt.Errorf("walreplay: time %q: want 1 to 9 fractional digits, got %d", s, n)
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("walreplay: time %q is neither Unix nanoseconds nor RFC 3339: %w", s, err)
	}
	if t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, fmt.Errorf("walreplay: time %q is outside the Unix-nanosecond range", s)
	}
	return t.UnixNano(), nil
}

func isInteger(s string) bool {
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatTime formats Unix nanoseconds as RFC 3339 in UTC with exactly 9
// fractional digits, so that it parses back to the same nanosecond and
// sorts lexically (for years 0000..9999).
func FormatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
}
