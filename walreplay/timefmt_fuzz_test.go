package walreplay

import (
	"testing"
	"time"
)

// FuzzParseTimeCanonical: instants come from operators and from directory
// names under a mount's at/. Whatever is accepted names one nanosecond, and
// its canonical RFC 3339 form names the same one.
func FuzzParseTimeCanonical(f *testing.F) {
	for _, s := range []string{"2026-11-21T14:29:00Z", "2026-11-21T14:29:00.123456789Z", "1763735340000000000", "-1", "+0", "2026-11-21T15:29:00.5+01:00", ".", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := ParseTime(s)
		if err != nil {
			return
		}
		canon := time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
		back, err := ParseTime(canon)
		if err != nil || back != ns {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, ns, canon, back, err)
		}
	})
}
