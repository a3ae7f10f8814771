package maintenance

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"memento/repo"
)

// RetentionPolicy says which snapshots of one group (a space, or the plain
// path snapshots of one host and set of paths) `memento forget` keeps. The
// semantics are restic's, so operators' habits carry over: every rule keeps
// snapshots independently and a snapshot is kept when any rule keeps it.
//
// Count rules take N > 0, or -1 for "unlimited"; 0 switches a rule off.
// Last keeps the N newest snapshots. Hourly..Yearly keep, for the N newest
// hours/days/ISO weeks/months/years that have snapshots, the newest snapshot
// of each. Within keeps every snapshot taken less than that long before the
// group's newest snapshot (not before now: a backup job that stopped does not
// make forget remove everything). Tags keeps every snapshot carrying any of
// the tags.
type RetentionPolicy struct {
	Last    int        `json:"last,omitempty"`
	Hourly  int        `json:"hourly,omitempty"`
	Daily   int        `json:"daily,omitempty"`
	Weekly  int        `json:"weekly,omitempty"`
	Monthly int        `json:"monthly,omitempty"`
	Yearly  int        `json:"yearly,omitempty"`
	Within  KeepWithin `json:"within,omitzero"`
	Tags    []string   `json:"tags,omitempty"`
	// Min keeps the Min newest snapshots whatever the other rules say (0:
	// off). It is a floor, not a rule of its own: a policy of only Min is
	// still Empty, and with Min unset nothing changes. The agent sets it to 2
	// so that several backups on one day (which daily/weekly/monthly count
	// once) never leave a space with a single snapshot.
	Min int `json:"min,omitempty"`
}

// Empty reports whether no rule is set. An empty policy would remove every
// snapshot, so forget refuses it.
func (p RetentionPolicy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 &&
		p.Within.IsZero() && len(p.Tags) == 0
}

// Validate rejects counts below -1.
func (p RetentionPolicy) Validate() error {
	for _, c := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if c.n < -1 {
			return fmt.Errorf("--keep-%s %d: give a count >= 1, or -1 for unlimited", c.name, c.n)
		}
	}
	if p.Min < 0 {
		return fmt.Errorf("--keep-min %d: give a count >= 0", p.Min)
	}
	return nil
}

// String lists the rules that are set, as flags.
func (p RetentionPolicy) String() string {
	var parts []string
	for _, c := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if c.n != 0 {
			parts = append(parts, fmt.Sprintf("--keep-%s %d", c.name, c.n))
		}
	}
	if p.Min > 0 {
		parts = append(parts, fmt.Sprintf("--keep-min %d", p.Min))
	}
	if !p.Within.IsZero() {
		parts = append(parts, "--keep-within "+p.Within.String())
	}
	for _, t := range p.Tags {
		parts = append(parts, "--keep-tag "+t)
	}
	return strings.Join(parts, " ")
}

// KeepWithin is a calendar duration: years, months and days are calendar
// units (a month back from March 31 is March 3 or 2, as time.AddDate has it),
// hours are hours.
type KeepWithin struct {
	Years, Months, Days, Hours int
}

// IsZero reports whether the duration is empty.
func (k KeepWithin) IsZero() bool { return k == KeepWithin{} }

// String formats the duration as ParseKeepWithin reads it, e.g. "1y2m3d4h".
func (k KeepWithin) String() string {
	var b strings.Builder
	for _, u := range []struct {
		n    int
		unit string
	}{{k.Years, "y"}, {k.Months, "m"}, {k.Days, "d"}, {k.Hours, "h"}} {
		if u.n != 0 {
			b.WriteString(strconv.Itoa(u.n) + u.unit)
		}
	}
	if b.Len() == 0 {
		return "0h"
	}
	return b.String()
}

// MarshalText writes the String form (JSON output).
func (k KeepWithin) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// before returns the instant k before t.
func (k KeepWithin) before(t time.Time) time.Time {
	return t.AddDate(-k.Years, -k.Months, -k.Days).Add(-time.Duration(k.Hours) * time.Hour)
}

// ParseKeepWithin reads a duration like restic's --keep-within: numbers with
// the units y (years), m (months), w (weeks, 7 days), d (days), h (hours),
// e.g. "7d", "2w", "1y6m", "36h".
func ParseKeepWithin(s string) (KeepWithin, error) {
	var k KeepWithin
	rest := strings.TrimSpace(s)
	if rest == "" {
		return k, fmt.Errorf("keep-within %q: empty duration", s)
	}
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return k, fmt.Errorf("keep-within %q: want numbers with units y, m, w, d, h (e.g. 7d, 1y6m, 36h)", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 100000 {
			return k, fmt.Errorf("keep-within %q: number %q out of range", s, rest[:i])
		}
		switch rest[i] {
		case 'y':
			k.Years += n
		case 'm':
			k.Months += n
		case 'w':
			k.Days += 7 * n
		case 'd':
			k.Days += n
		case 'h':
			k.Hours += n
		default:
			return k, fmt.Errorf("keep-within %q: unknown unit %q (use y, m, w, d, h)", s, rest[i:i+1])
		}
		rest = rest[i+1:]
	}
	if k.IsZero() {
		return k, fmt.Errorf("keep-within %q: a zero duration keeps nothing", s)
	}
	return k, nil
}

// RetentionDecision is the verdict on one snapshot: kept, and by which rules
// ("last", "hourly", ..., "within 7d", "tag nightly"), or removed.
type RetentionDecision struct {
	Snapshot *repo.Snapshot
	Keep     bool
	Reasons  []string
}

// bucketRule is one count rule: a snapshot is kept when its bucket differs
// from the bucket of the last snapshot this rule kept, while the rule has
// count left.
type bucketRule struct {
	name   string
	count  int
	bucket func(t time.Time) int
	last   int
	used   bool
}

// ApplyPolicy decides, for the snapshots of one group, which ones p keeps.
// Time buckets (hour, day, ...) are taken in loc (nil: UTC). The result is
// ordered newest first; snapshots with the same time are ordered by ID, the
// greater first, so that every run decides the same way.
func ApplyPolicy(sns []*repo.Snapshot, p RetentionPolicy, loc *time.Location) []RetentionDecision {
	if loc == nil {
		loc = time.UTC
	}
	sorted := slices.Clone(sns)
	slices.SortFunc(sorted, func(a, b *repo.Snapshot) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.ID.String(), a.ID.String())
	})
	rules := []*bucketRule{
		{name: "last", count: p.Last, bucket: nil},
		{name: "hourly", count: p.Hourly, bucket: func(t time.Time) int { y, m, d := t.Date(); return ((y*100+int(m))*100+d)*100 + t.Hour() }},
		{name: "daily", count: p.Daily, bucket: func(t time.Time) int { y, m, d := t.Date(); return (y*100+int(m))*100 + d }},
		{name: "weekly", count: p.Weekly, bucket: func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }},
		{name: "monthly", count: p.Monthly, bucket: func(t time.Time) int { y, m, _ := t.Date(); return y*100 + int(m) }},
		{name: "yearly", count: p.Yearly, bucket: func(t time.Time) int { return t.Year() }},
	}
	var cutoff time.Time
	if !p.Within.IsZero() && len(sorted) > 0 {
		cutoff = p.Within.before(sorted[0].Time)
	}
	out := make([]RetentionDecision, len(sorted))
	for i, sn := range sorted {
		d := RetentionDecision{Snapshot: sn}
		t := sn.Time.In(loc)
		for _, r := range rules {
			if r.count == 0 {
				continue
			}
			if r.bucket == nil { // last: every snapshot is its own bucket
				d.Reasons = append(d.Reasons, r.name)
			} else {
				b := r.bucket(t)
				if r.used && b == r.last {
					continue
				}
				r.last, r.used = b, true
				d.Reasons = append(d.Reasons, r.name)
			}
			if r.count > 0 {
				r.count--
			}
		}
		if !cutoff.IsZero() && sn.Time.After(cutoff) {
			d.Reasons = append(d.Reasons, "within "+p.Within.String())
		}
		for _, tag := range p.Tags {
			if slices.Contains(sn.Tags, tag) {
				d.Reasons = append(d.Reasons, "tag "+tag)
			}
		}
		if i < p.Min && len(d.Reasons) == 0 {
			d.Reasons = append(d.Reasons, "min")
		}
		d.Keep = len(d.Reasons) > 0
		out[i] = d
	}
	return out
}
