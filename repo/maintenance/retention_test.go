package maintenance

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
)

// snapAt makes a catalog snapshot at an RFC 3339 time; its ID is derived from
// the label so that ties are ordered deterministically.
func snapAt(label, ts string, tags ...string) *repo.Snapshot {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		panic(err)
	}
	var id chunk.ID
	copy(id[:], label)
	return &repo.Snapshot{ID: id, Manifest: repo.Manifest{Time: t, Tags: tags}}
}

func label(sn *repo.Snapshot) string { return strings.TrimRight(string(sn.ID[:]), "\x00") }

// decisions renders ApplyPolicy's verdicts as "label:reason+reason" (kept)
// or "label:-" (removed), newest first.
func decisions(ds []RetentionDecision) string {
	var out []string
	for _, d := range ds {
		r := "-"
		if d.Keep {
			r = strings.Join(d.Reasons, "+")
		}
		out = append(out, label(d.Snapshot)+":"+r)
	}
	return strings.Join(out, " ")
}

func TestApplyPolicy(t *testing.T) {
	// Two weeks of backups: several a day on some days, an hour apart.
	series := []*repo.Snapshot{
		snapAt("a", "2026-11-02T01:00:00Z"), // Monday, ISO week 45
		snapAt("b", "2026-11-02T23:30:00Z"),
		snapAt("c", "2026-11-05T10:00:00Z", "monthly-close"),
		snapAt("d", "2026-11-09T10:00:00Z"), // Monday, week 46
		snapAt("e", "2026-11-09T10:20:00Z"),
		snapAt("f", "2026-11-09T11:05:00Z"),
		snapAt("g", "2026-11-10T09:00:00Z", "nightly"),
		snapAt("h", "2026-11-10T09:59:59Z", "nightly"),
	}
	older := []*repo.Snapshot{
		snapAt("x", "2025-12-31T23:00:00Z"),
		snapAt("y", "2026-01-01T00:30:00Z"),
		snapAt("z", "2026-10-31T12:00:00Z"),
	}
	cases := []struct {
		name string
		sns  []*repo.Snapshot
		p    RetentionPolicy
		loc  *time.Location
		want string
	}{
		{"last 3", series, RetentionPolicy{Last: 3},
			nil, "h:last g:last f:last e:- d:- c:- b:- a:-"},
		{"last unlimited", series[:3], RetentionPolicy{Last: -1},
			nil, "c:last b:last a:last"},
		{"hourly 3: newest of each of the last 3 hours with snapshots", series, RetentionPolicy{Hourly: 3},
			nil, "h:hourly g:- f:hourly e:hourly d:- c:- b:- a:-"},
		{"daily 2", series, RetentionPolicy{Daily: 2},
			nil, "h:daily g:- f:daily e:- d:- c:- b:- a:-"},
		{"daily 10 keeps one per day that has snapshots", series, RetentionPolicy{Daily: 10},
			nil, "h:daily g:- f:daily e:- d:- c:daily b:daily a:-"},
		{"weekly 2: ISO weeks (Monday starts a week)", series, RetentionPolicy{Weekly: 2},
			nil, "h:weekly g:- f:- e:- d:- c:weekly b:- a:-"},
		{"monthly and yearly across a year end", append(slices.Clone(series), older...), RetentionPolicy{Monthly: 3, Yearly: 2},
			nil, "h:monthly+yearly g:- f:- e:- d:- c:- b:- a:- z:monthly y:monthly x:yearly"},
		{"rules combine; reasons list every rule", series, RetentionPolicy{Last: 1, Daily: 1, Weekly: 1},
			nil, "h:last+daily+weekly g:- f:- e:- d:- c:- b:- a:-"},
		{"within 1d of the newest snapshot, not of now", series, RetentionPolicy{Within: KeepWithin{Days: 1}},
			nil, "h:within 1d g:within 1d f:within 1d e:within 1d d:within 1d c:- b:- a:-"},
		{"within is strict: exactly 1d before is out", []*repo.Snapshot{snapAt("n", "2026-11-10T10:00:00Z"), snapAt("o", "2026-11-09T10:00:00Z"), snapAt("p", "2026-11-09T10:00:01Z")},
			RetentionPolicy{Within: KeepWithin{Days: 1}}, nil, "n:within 1d p:within 1d o:-"},
		{"within calendar months", append(slices.Clone(series), older...), RetentionPolicy{Within: KeepWithin{Months: 1}},
			nil, "h:within 1m g:within 1m f:within 1m e:within 1m d:within 1m c:within 1m b:within 1m a:within 1m z:within 1m y:- x:-"},
		{"tags", series, RetentionPolicy{Tags: []string{"nightly", "monthly-close"}},
			nil, "h:tag nightly g:tag nightly f:- e:- d:- c:tag monthly-close b:- a:-"},
		{"ties: same time, the greater ID is newer", []*repo.Snapshot{snapAt("t1", "2026-11-10T10:00:00Z"), snapAt("t2", "2026-11-10T10:00:00Z"), snapAt("t0", "2026-11-09T10:00:00Z")},
			RetentionPolicy{Daily: 2}, nil, "t2:daily t1:- t0:daily"},
		{"time zone decides the day", []*repo.Snapshot{snapAt("u", "2026-11-10T01:00:00Z"), snapAt("v", "2026-11-09T23:00:00Z")},
			RetentionPolicy{Daily: 5}, time.FixedZone("UTC+3", 3*3600), "u:daily v:-"},
		{"same snapshots in UTC: two days", []*repo.Snapshot{snapAt("u", "2026-11-10T01:00:00Z"), snapAt("v", "2026-11-09T23:00:00Z")},
			RetentionPolicy{Daily: 5}, nil, "u:daily v:daily"},
		{"empty group", nil, RetentionPolicy{Last: 1}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := decisions(ApplyPolicy(c.sns, c.p, c.loc))
			if got != c.want {
				t.Fatalf("policy %s:\n got %s\nwant %s", c.p, got, c.want)
			}
		})
	}
}

// The input order never matters.
func TestApplyPolicyOrderIndependent(t *testing.T) {
	var sns []*repo.Snapshot
	for i := range 40 {
		sns = append(sns, snapAt(fmt.Sprintf("s%02d", i), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i*i)*37*time.Minute).Format(time.RFC3339)))
	}
	p := RetentionPolicy{Last: 2, Hourly: 5, Daily: 4, Weekly: 2, Monthly: 1}
	want := decisions(ApplyPolicy(sns, p, nil))
	rev := slices.Clone(sns)
	slices.Reverse(rev)
	if got := decisions(ApplyPolicy(rev, p, nil)); got != want {
		t.Fatalf("reversed input:\n got %s\nwant %s", got, want)
	}
}

func TestParseKeepWithin(t *testing.T) {
	cases := []struct {
		in      string
		want    KeepWithin
		wantErr string
	}{
		{"7d", KeepWithin{Days: 7}, ""},
		{"2w", KeepWithin{Days: 14}, ""},
		{"1y6m", KeepWithin{Years: 1, Months: 6}, ""},
		{"36h", KeepWithin{Hours: 36}, ""},
		{"1y2m3d4h", KeepWithin{1, 2, 3, 4}, ""},
		{"", KeepWithin{}, "empty duration"},
		{"7", KeepWithin{}, "want numbers with units"},
		{"d", KeepWithin{}, "want numbers with units"},
		{"3s", KeepWithin{}, `unknown unit "s"`},
		{"0d", KeepWithin{}, "zero duration"},
		{"-1d", KeepWithin{}, "want numbers with units"},
	}
	for _, c := range cases {
		got, err := ParseKeepWithin(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseKeepWithin(%q): err %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseKeepWithin(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if back, err := ParseKeepWithin(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q via %q: %+v, %v", c.in, got.String(), back, err)
		}
	}
}

func TestRetentionPolicyEmptyAndValidate(t *testing.T) {
	if !(RetentionPolicy{}).Empty() {
		t.Fatal("zero policy not empty")
	}
	if (RetentionPolicy{Tags: []string{"x"}}).Empty() || (RetentionPolicy{Within: KeepWithin{Hours: 1}}).Empty() {
		t.Fatal("policy with a rule reported empty")
	}
	if err := (RetentionPolicy{Daily: -2}).Validate(); err == nil || !strings.Contains(err.Error(), "--keep-daily -2") {
		t.Fatalf("Validate: %v", err)
	}
	if got := (RetentionPolicy{Last: 3, Daily: -1, Within: KeepWithin{Days: 7}, Tags: []string{"a"}}).String(); got != "--keep-last 3 --keep-daily -1 --keep-within 7d --keep-tag a" {
		t.Fatalf("String: %q", got)
	}
}

// FuzzParseKeepWithin: whatever it accepts prints back to itself.
func FuzzParseKeepWithin(f *testing.F) {
	for _, s := range []string{"7d", "1y6m", "36h", "2w", "", "5", "1y2m3d4h", "99999y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKeepWithin(s)
		if err != nil {
			return
		}
		back, err := ParseKeepWithin(k.String())
		if err != nil || back != k {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, k, k.String(), back, err)
		}
	})
}

// BenchmarkApplyPolicy reports snapshots decided per second for a year of
// hourly snapshots under a typical policy.
func BenchmarkApplyPolicy(b *testing.B) {
	var sns []*repo.Snapshot
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 24 * 365 {
		sns = append(sns, snapAt(fmt.Sprintf("h%05d", i), t0.Add(time.Duration(i)*time.Hour).Format(time.RFC3339)))
	}
	p := RetentionPolicy{Last: 5, Hourly: 48, Daily: 14, Weekly: 8, Monthly: 12, Yearly: 3, Within: KeepWithin{Days: 2}}
	b.ResetTimer()
	for range b.N {
		ApplyPolicy(sns, p, time.UTC)
	}
	b.ReportMetric(float64(len(sns)*b.N)/b.Elapsed().Seconds(), "snapshots/s")
}

// Min is a floor under the other rules: three backups on one day are one
// daily/weekly/monthly bucket, so GFS alone keeps one; Min 2 keeps the two
// newest. Unset, the verdicts are exactly those without it.
func TestApplyPolicyMin(t *testing.T) {
	sns := []*repo.Snapshot{
		snapAt("a", "2026-11-20T01:00:00Z"), snapAt("b", "2026-11-20T05:00:00Z"), snapAt("c", "2026-11-20T09:00:00Z"),
	}
	gfs := RetentionPolicy{Daily: 7, Weekly: 4, Monthly: 12}
	if got, want := decisions(ApplyPolicy(sns, gfs, time.UTC)), "c:daily+weekly+monthly b:- a:-"; got != want {
		t.Fatalf("without Min: %s, want %s", got, want)
	}
	gfs.Min = 2
	if got, want := decisions(ApplyPolicy(sns, gfs, time.UTC)), "c:daily+weekly+monthly b:min a:-"; got != want {
		t.Fatalf("Min 2: %s, want %s", got, want)
	}
	if !(RetentionPolicy{Min: 2}).Empty() {
		t.Fatal("a policy of only Min must stay Empty (forget refuses it)")
	}
	if err := (RetentionPolicy{Daily: 1, Min: -1}).Validate(); err == nil {
		t.Fatal("Min -1 accepted")
	}
	if s := gfs.String(); !strings.Contains(s, "--keep-min 2") {
		t.Fatalf("String %q lacks --keep-min", s)
	}
}
