// Package instant is the one parser and the one display format of the
// points in time an operator gives memento (restore --at, wal replay --at,
// log --since, the directory names under a mount's spaces/<space>/at/) and
// of the times memento prints.
//
// Accepted forms (Forms lists them for error messages):
//
//   - RFC 3339 with any zone offset or Z, up to 9 fractional digits, with
//     'T' or a space between date and time: 2026-12-05T14:03:00.123456789+01:00
//   - Unix nanoseconds, an integer: 1796445336242748925
//   - Unix seconds after '@' (as GNU date), up to 9 fractional digits: @1796445336.5
//   - a local date or date and time without a zone, read in the zone given
//     (memento --tz, default the process's local zone, i.e. $TZ):
//     2026-12-05 (midnight), 2026-12-05 14:03, 2026-12-05T14:03:00.5
//   - relative to now (not for names that must mean the same instant each
//     time they are read, see ParseAbsolute): now, today and yesterday
//     (midnight in the zone, as journalctl), -15m, 2h ago, 1d12h ago, 1w ago;
//     units ns us ms s m h d (24h) w (7d)
//
// More than 9 fractional digits are refused rather than rounded: nanoseconds
// are the WAL's resolution. Times outside the int64 Unix-nanosecond range
// (years 1677..2262) are refused.
//
// Format prints an instant as RFC 3339 with its zone offset and nanoseconds,
// which every parser here accepts back unchanged; FormatSeconds is the same
// to the second, for tables.
package instant

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Forms is the one-line list of accepted forms, for error messages and help.
const Forms = "RFC 3339 (2026-12-05T14:03:00.5+01:00 or ...Z, up to 9 fractional digits), " +
	"Unix nanoseconds, @Unix seconds, a local date or time in --tz (2026-12-05, 2026-12-05 14:03:00), " +
	"or relative (now, today, yesterday, -15m, 2h ago, 7d ago)"

// AbsoluteForms is Forms without the relative ones (ParseAbsolute).
const AbsoluteForms = "RFC 3339 (2026-12-05T14:03:00.5+01:00 or ...Z, up to 9 fractional digits), " +
	"Unix nanoseconds, @Unix seconds, or a local date or time in --tz (2026-12-05, 2026-12-05 14:03:00)"

// Options says how to read zone-less and relative forms.
type Options struct {
	// Loc is the zone of forms without one (and of today/yesterday); nil is time.Local.
	Loc *time.Location
	// Now is the instant relative forms count from; zero is time.Now().
	Now time.Time
	// BareDurationAgo reads a duration without '-' or 'ago' ("24h", "7d") as
	// that long ago: log --since 24h.
	BareDurationAgo bool
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Parse reads s in any accepted form. Errors are one line naming the input
// and listing the accepted forms.
func Parse(s string, o Options) (time.Time, error) {
	if t, ok, err := parseRelative(s, o); ok || err != nil {
		if err != nil {
			return time.Time{}, err
		}
		return inRange(s, t)
	}
	t, err := parseAbsolute(s, o.loc())
	if err != nil {
		if errors.Is(err, errUnknown) {
			return time.Time{}, fmt.Errorf("%q is not a time: give %s", s, Forms)
		}
		return time.Time{}, err
	}
	return t, nil
}

// ParseAbsolute reads s in an absolute form only: a name that must mean the
// same instant whenever it is read (a mount's at/<T>/ directory) cannot be
// relative to now.
func ParseAbsolute(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.Local
	}
	t, err := parseAbsolute(s, loc)
	if errors.Is(err, errUnknown) {
		return time.Time{}, fmt.Errorf("%q is not an absolute time: give %s", s, AbsoluteForms)
	}
	return t, err
}

// Format prints t as RFC 3339 in zone loc (nil: time.Local) with 9
// fractional digits: every parser here reads it back as the same nanosecond.
func Format(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	return t.In(loc).Format("2006-01-02T15:04:05.000000000Z07:00")
}

// FormatSeconds prints t as RFC 3339 in zone loc (nil: time.Local) to the
// second (tables: snapshots, log, ls).
func FormatSeconds(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	return t.In(loc).Format(time.RFC3339)
}

func (o Options) loc() *time.Location {
	if o.Loc == nil {
		return time.Local
	}
	return o.Loc
}

var errUnknown = errors.New("unknown form")

func inRange(s string, t time.Time) (time.Time, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%q is outside the Unix-nanosecond range (years 1677..2262)", s)
	}
	return t, nil
}

// layouts are the RFC 3339 forms with a zone ('T' or ' ' between date and
// time), then the zone-less local ones, read in order.
var (
	zoned = []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07:00"}
	local = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}
)

func parseAbsolute(s string, loc *time.Location) (time.Time, error) {
	s0 := s
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("empty time: give %s", Forms)
	}
	if isInteger(s) {
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is outside the Unix-nanosecond range (years 1677..2262)", s0)
		}
		return time.Unix(0, ns), nil
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		return parseUnixSeconds(s0, rest)
	}
	if err := fractionDigits(s0, s); err != nil {
		return time.Time{}, err
	}
	for _, l := range zoned {
		if t, err := time.Parse(l, s); err == nil {
			return inRange(s0, t)
		}
	}
	for _, l := range local {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return inRange(s0, t)
		}
	}
	return time.Time{}, errUnknown
}

// fractionDigits refuses more than 9 fractional digits of a date and time
// (Go would round them) and a '.' without digits.
func fractionDigits(s0, s string) error {
	i := strings.IndexByte(s, '.')
	if i < 0 || !strings.ContainsAny(s[:i], ":") {
		return nil
	}
	n := 0
	for j := i + 1; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
		n++
	}
	if n == 0 || n > 9 {
		return fmt.Errorf("%q: want 1 to 9 fractional digits of a second (nanoseconds), got %d", s0, n)
	}
	return nil
}

// parseUnixSeconds reads "1796445336" or "1796445336.242748925" exactly.
func parseUnixSeconds(s0, s string) (time.Time, error) {
	sec, frac, hasFrac := strings.Cut(s, ".")
	if !isInteger(sec) || (hasFrac && (frac == "" || len(frac) > 9 || !isDigits(frac))) {
		return time.Time{}, fmt.Errorf("%q: want @ and Unix seconds with up to 9 fractional digits, e.g. @1796445336.5", s0)
	}
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < math.MinInt64/int64(time.Second) || n > math.MaxInt64/int64(time.Second) {
		return time.Time{}, fmt.Errorf("%q is outside the Unix-nanosecond range (years 1677..2262)", s0)
	}
	var ns int64
	if hasFrac {
		ns, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if strings.HasPrefix(sec, "-") {
			ns = -ns
		}
	}
	return inRange(s0, time.Unix(n, ns))
}

// parseRelative reads now, today, yesterday, -D and "D ago"; ok is false
// when s is none of them.
func parseRelative(s string, o Options) (time.Time, bool, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "now":
		return now, true, nil
	case "today", "yesterday":
		y, m, d := now.In(o.loc()).Date()
		if t == "yesterday" {
			d--
		}
		return time.Date(y, m, d, 0, 0, 0, 0, o.loc()), true, nil
	}
	var dur string
	switch {
	case strings.HasSuffix(t, " ago"):
		dur = strings.TrimSpace(strings.TrimSuffix(t, " ago"))
	case strings.HasPrefix(t, "-") && !isInteger(t):
		dur = t[1:]
	case o.BareDurationAgo && t != "" && !isInteger(t) && t[0] >= '0' && t[0] <= '9' && !strings.ContainsAny(t, ":T@"):
		if _, err := parseDuration(t); err != nil {
			return time.Time{}, false, nil // maybe a date
		}
		dur = t
	default:
		return time.Time{}, false, nil
	}
	d, err := parseDuration(strings.ReplaceAll(dur, " ", ""))
	if err != nil {
		return time.Time{}, true, fmt.Errorf("%q: %v; give e.g. -15m, 2h ago, 7d ago (units ns us ms s m h d w)", s, err)
	}
	return now.Add(-d), true, nil
}

// parseDuration is time.ParseDuration plus d (24h) and w (7 days), without
// a sign: "15m", "1d12h", "1.5h".
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		j := i
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		num, unit := s[:i], s[i:j]
		if num == "" || unit == "" {
			return 0, fmt.Errorf("duration %q: want a number and a unit", s)
		}
		var d time.Duration
		var err error
		switch unit {
		case "d", "w":
			h := 24.0
			if unit == "w" {
				h = 7 * 24
			}
			f, perr := strconv.ParseFloat(num, 64)
			if perr != nil || f*h*float64(time.Hour) >= math.MaxInt64 {
				return 0, fmt.Errorf("duration %q is not a number of %s or too long", num+unit, unit)
			}
			d = time.Duration(f * h * float64(time.Hour))
		default:
			d, err = time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("duration %q: unknown unit or too long", num+unit)
			}
		}
		if total > math.MaxInt64-d {
			return 0, errors.New("duration too long")
		}
		total += d
		s = s[j:]
	}
	return total, nil
}

// isInteger reports whether s is an optionally signed run of digits.
func isInteger(s string) bool {
	return isDigits(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")) && !strings.HasPrefix(s, "+-") && !strings.HasPrefix(s, "-+")
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
