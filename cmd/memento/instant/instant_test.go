package instant

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 14, 3, 0, 123456789, time.UTC) // 15:03 in Berlin
	o := Options{Loc: berlin, Now: now}
	for _, c := range []struct {
		in   string
		o    Options
		want time.Time
		err  string // substring of the error; "" means accepted
	}{
		{in: "2026-12-05T14:03:00Z", want: time.Date(2026, 12, 5, 14, 3, 0, 0, time.UTC)},
		{in: "2026-12-05T14:03:00.242748925Z", want: time.Date(2026, 12, 5, 14, 3, 0, 242748925, time.UTC)},
		{in: "2026-12-05T15:03:00.5+01:00", want: time.Date(2026, 12, 5, 14, 3, 0, 5e8, time.UTC)},
		{in: "2026-12-05 09:03:00-05:00", want: time.Date(2026, 12, 5, 14, 3, 0, 0, time.UTC)},
		{in: "2026-12-05T14:03:00+05:45", want: time.Date(2026, 12, 5, 8, 18, 0, 0, time.UTC)},
		{in: "1796445336242748925", want: time.Unix(0, 1796445336242748925)},
		{in: "-1", want: time.Unix(0, -1)},
		{in: "0", want: time.Unix(0, 0)},
		{in: "@1796445336", want: time.Unix(1796445336, 0)},
		{in: "@1796445336.242748925", want: time.Unix(1796445336, 242748925)},
		{in: "@1796445336.5", want: time.Unix(1796445336, 5e8)},
		{in: "2026-12-05", want: time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)},
		{in: "2026-12-05 14:03", want: time.Date(2026, 12, 5, 13, 3, 0, 0, time.UTC)},
		{in: "2026-12-05 14:03:00", want: time.Date(2026, 12, 5, 13, 3, 0, 0, time.UTC)},
		{in: "2026-07-05T14:03:00.000000001", want: time.Date(2026, 7, 5, 12, 3, 0, 1, time.UTC)}, // summer time
		{in: "2026-12-05 14:03:00", o: Options{Loc: time.UTC, Now: now}, want: time.Date(2026, 12, 5, 14, 3, 0, 0, time.UTC)},
		{in: "now", want: now},
		{in: "NOW", want: now},
		{in: "-15m", want: now.Add(-15 * time.Minute)},
		{in: "2h ago", want: now.Add(-2 * time.Hour)},
		{in: "1d12h ago", want: now.Add(-36 * time.Hour)},
		{in: "1d 12h ago", want: now.Add(-36 * time.Hour)},
		{in: "-1w", want: now.Add(-7 * 24 * time.Hour)},
		{in: "1.5h ago", want: now.Add(-90 * time.Minute)},
		{in: "-500ms", want: now.Add(-500 * time.Millisecond)},
		{in: "today", want: time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)},
		{in: "yesterday", want: time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC)},
		{in: "24h", o: Options{Loc: berlin, Now: now, BareDurationAgo: true}, want: now.Add(-24 * time.Hour)},
		{in: "7d", o: Options{Loc: berlin, Now: now, BareDurationAgo: true}, want: now.Add(-7 * 24 * time.Hour)},
		{in: "2026-12-05", o: Options{Loc: berlin, Now: now, BareDurationAgo: true}, want: time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)},

		{in: "24h", err: `"24h" is not a time: give RFC 3339`},
		{in: "yesterday at noon", err: `"yesterday at noon" is not a time: give RFC 3339`},
		{in: "", err: "empty time"},
		{in: "2026-12-05T14:03:00.1234567891Z", err: "want 1 to 9 fractional digits of a second (nanoseconds), got 10"},
		{in: "2026-12-05T14:03:00.Z", err: "got 0"},
		{in: "2026-13-05", err: "is not a time"},
		{in: "2026-12-05T14:03:00+25:00", err: "is not a time"},
		{in: "99999999999999999999", err: "outside the Unix-nanosecond range"},
		{in: "2263-01-01T00:00:00Z", err: "outside the Unix-nanosecond range"},
		{in: "@99999999999", err: "outside the Unix-nanosecond range"},
		{in: "@1.1234567891", err: "up to 9 fractional digits"},
		{in: "@abc", err: "want @ and Unix seconds"},
		{in: "-15x", err: `"-15x": duration "15x": unknown unit`},
		{in: "ago", err: "is not a time"},
		{in: "h ago", err: "want a number and a unit"},
		{in: "999999999w ago", err: "too long"},
		{in: "99999999999999999999h ago", err: "too long"},
	} {
		opts := o
		if c.o != (Options{}) {
			opts = c.o
		}
		got, err := Parse(c.in, opts)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("Parse(%q): %v", c.in, err)
		case c.err == "" && !got.Equal(c.want):
			t.Errorf("Parse(%q) = %s, want %s", c.in, Format(got, time.UTC), Format(c.want, time.UTC))
		case c.err != "" && err == nil:
			t.Errorf("Parse(%q) = %s, want an error with %q", c.in, Format(got, time.UTC), c.err)
		case c.err != "" && !strings.Contains(err.Error(), c.err):
			t.Errorf("Parse(%q): %v, want %q", c.in, err, c.err)
		case err != nil && strings.Contains(err.Error(), "2006"):
			t.Errorf("Parse(%q): the error shows Go's layout: %v", c.in, err)
		}
	}
}

func TestParseAbsoluteRefusesRelative(t *testing.T) {
	for _, s := range []string{"now", "today", "-15m", "2h ago"} {
		if _, err := ParseAbsolute(s, time.UTC); err == nil || !strings.Contains(err.Error(), "is not an absolute time") {
			t.Errorf("ParseAbsolute(%q): %v", s, err)
		}
	}
	if got, err := ParseAbsolute("2026-12-05", time.UTC); err != nil || !got.Equal(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseAbsolute(2026-12-05) = %s, %v", got, err)
	}
}

// TestFormatRoundTrip: what memento prints, it accepts back as the same
// nanosecond (Format) or second (FormatSeconds), in any zone.
func TestFormatRoundTrip(t *testing.T) {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	for _, loc := range []*time.Location{time.UTC, tokyo, time.FixedZone("", -(3*3600 + 1800))} {
		for _, ns := range []int64{0, 1, -1, 1796445336242748925, 1796445336000000000} {
			in := time.Unix(0, ns)
			s := Format(in, loc)
			got, err := Parse(s, Options{Loc: time.UTC})
			if err != nil || !got.Equal(in) {
				t.Errorf("%d -> %q -> %s, %v", ns, s, got, err)
			}
			s = FormatSeconds(in, loc)
			got, err = Parse(s, Options{Loc: time.UTC})
			if err != nil || !got.Equal(in.Truncate(time.Second)) {
				t.Errorf("%d -> %q -> %s, %v", ns, s, got, err)
			}
		}
	}
	if got := Format(time.Unix(0, 1796445336242748925), tokyo); got != "2026-12-05T13:35:36.242748925+09:00" {
		t.Errorf("Format = %q", got)
	}
}

// FuzzParse: whatever is accepted names one nanosecond, and its printed
// form names the same one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"2026-11-21T14:29:00Z", "2026-11-21 14:29:00.123456789+01:00", "1763735340000000000", "-1",
		"@1.5", "2026-12-05", "-15m", "2h ago", "yesterday", "1d12h ago", ".", "1e9", "@-1.5"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 5, 14, 3, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s, Options{Loc: time.UTC, Now: now, BareDurationAgo: true})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q: a multi-line error: %v", s, err)
			}
			return
		}
		back, err := Parse(Format(got, time.UTC), Options{Loc: time.UTC})
		if err != nil || !back.Equal(got) {
			t.Fatalf("%q -> %s -> %s, %v", s, Format(got, time.UTC), back, err)
		}
	})
}
