package index

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestSnapshots(t *testing.T) {
	ix := openTemp(t)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	entries := []SnapshotEntry{
		{ID: "c3", Time: t0.Add(time.Hour), Space: "s1", Host: "h1", Tags: []string{"daily"}, Summary: json.RawMessage(`{"files":3}`)},
		{ID: "a1", Time: t0, Space: "s1", Host: "h1"},
		{ID: "b2", Time: t0, Space: "s2", Host: "h2", Tags: []string{"x", "y"}},
	}
	if err := ix.PutSnapshots(entries); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	want := []SnapshotEntry{entries[1], entries[2], entries[0]} // by time, then id
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshots\n got %+v\nwant %+v", got, want)
	}
	// Replace one, delete one, delete an absent one.
	entries[0].Tags = []string{"weekly"}
	if err := ix.PutSnapshots(entries[:1]); err != nil {
		t.Fatal(err)
	}
	if err := ix.DeleteSnapshot("a1"); err != nil {
		t.Fatal(err)
	}
	if err := ix.DeleteSnapshot("zz"); err != nil {
		t.Fatal(err)
	}
	got, _ = ix.Snapshots()
	if want := []SnapshotEntry{entries[2], entries[0]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after changes\n got %+v\nwant %+v", got, want)
	}
	if err := ix.PutSnapshots([]SnapshotEntry{{ID: ""}}); err == nil {
		t.Fatal("empty id accepted")
	}
	if err := ix.DeleteSnapshot(""); err == nil {
		t.Fatal("empty id accepted")
	}
}

// TestLatestSnapshot: the newest entry of a space by time, then ID (the
// last of Snapshots' order among the space's entries), decoded whole;
// none for a space without entries.
func TestLatestSnapshot(t *testing.T) {
	ix := openTemp(t)
	if _, ok, err := ix.LatestSnapshot("s1"); ok || err != nil {
		t.Fatalf("empty catalog: %v, %v", ok, err)
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	entries := []SnapshotEntry{
		{ID: "a1", Time: t0.Add(time.Hour), Space: "s1", Host: "h1", Tags: []string{"daily"}, Summary: json.RawMessage(`{"files":3}`)},
		{ID: "b2", Time: t0.Add(time.Hour), Space: "s1", Host: "h2", Summary: json.RawMessage(`{"files":4}`)}, // same time, higher ID
		{ID: "c3", Time: t0, Space: "s1", Host: "h1"},
		{ID: "d4", Time: t0.Add(2 * time.Hour), Space: "s2", Host: "h1"},
		{ID: "e5", Time: t0.Add(3 * time.Hour), Space: "", Host: "h1"},
	}
	if err := ix.PutSnapshots(entries); err != nil {
		t.Fatal(err)
	}
	all, err := ix.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		space string
		want  SnapshotEntry
	}{{"s1", entries[1]}, {"s2", entries[3]}, {"", entries[4]}} {
		got, ok, err := ix.LatestSnapshot(c.space)
		if !ok || err != nil || !reflect.DeepEqual(got, c.want) {
			t.Fatalf("LatestSnapshot(%q) = %+v, %v, %v; want %+v", c.space, got, ok, err, c.want)
		}
		var last SnapshotEntry // the same as the last of Snapshots' order
		for _, e := range all {
			if e.Space == c.space {
				last = e
			}
		}
		if !reflect.DeepEqual(got, last) {
			t.Fatalf("LatestSnapshot(%q) = %s, the last of Snapshots is %s", c.space, got.ID, last.ID)
		}
	}
	if _, ok, err := ix.LatestSnapshot("s3"); ok || err != nil {
		t.Fatalf("space without snapshots: %v, %v", ok, err)
	}
	// LatestSnapshots answers for several spaces from one pass, as
	// LatestSnapshot does for each; a space without snapshots is absent.
	latest, err := ix.LatestSnapshots([]string{"s1", "s2", "s3", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]SnapshotEntry{"s1": entries[1], "s2": entries[3], "": entries[4]}
	if !reflect.DeepEqual(latest, want) {
		t.Fatalf("LatestSnapshots = %+v, want %+v", latest, want)
	}
}

func TestSnapshotIDs(t *testing.T) {
	ix := openTemp(t)
	if ids, err := ix.SnapshotIDs(); len(ids) != 0 || err != nil {
		t.Fatalf("empty catalog: %v, %v", ids, err)
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := ix.PutSnapshots([]SnapshotEntry{{ID: "b2", Time: t0, Space: "s1"}, {ID: "a1", Time: t0.Add(time.Hour), Space: "s2"}}); err != nil {
		t.Fatal(err)
	}
	ids, err := ix.SnapshotIDs()
	slices.Sort(ids)
	if err != nil || !reflect.DeepEqual(ids, []string{"a1", "b2"}) {
		t.Fatalf("SnapshotIDs = %v, %v", ids, err)
	}
}

// TestEntryHead: the id, time and space of an entry, in PutSnapshots'
// order or another; an entry without one of them is refused.
func TestEntryHead(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 5, time.UTC)
	want := SnapshotHead{ID: "a1", Time: t0, Space: "s1"}
	v, err := json.Marshal(SnapshotEntry{ID: "a1", Time: t0, Space: "s1", Host: "h", Tags: []string{"x"}, Summary: json.RawMessage(`{"big":[1,2,3]}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{string(v), `{"summary":{"x":[1]},"space":"s1","host":"h","time":"2024-05-01T12:00:00.000000005Z","id":"a1"}`,
		`{"id":"a\u0031","time":"2024-05-01T12:00:00.000000005Z","space":"s1"}`, `{"id":"a1", "time":"2024-05-01T12:00:00.000000005Z","space":"s1"}`} {
		if h, err := entryHead([]byte(in)); err != nil || h != want {
			t.Fatalf("entryHead(%s) = %+v, %v; want %+v", in, h, err, want)
		}
	}
	for _, in := range []string{``, `[]`, `{"id":"a1","time":"2024-05-01T12:00:00Z"}`, `{"id":"a1","time":"yesterday","space":"s1"}`, `{"id":"a1","id":"a2","time":"2024-05-01T12:00:00Z"}`} {
		if h, err := entryHead([]byte(in)); err == nil {
			t.Fatalf("entryHead(%s) = %+v, want an error", in, h)
		}
	}
}

// TestSpaceSnapshotsAndHeads: SpaceSnapshots is Snapshots' entries of one
// space, in Snapshots' order, whether an entry is in PutSnapshots' layout
// or another (read through encoding/json); SnapshotHeads is every entry's
// ID, time and space in the same order. A damaged entry fails both,
// naming it, even when it belongs to another space.
func TestSpaceSnapshotsAndHeads(t *testing.T) {
	ix := openTemp(t)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 5, time.UTC)
	entries := []SnapshotEntry{
		{ID: "c3", Time: t0.Add(time.Hour), Space: "s1", Host: "h1", Tags: []string{"daily"}, Summary: json.RawMessage(`{"files":3}`)},
		{ID: "a1", Time: t0, Space: "s1", Host: "h1", Summary: json.RawMessage(`{"files":1}`)},
		{ID: "b2", Time: t0, Space: "s2", Host: "h2"},
		{ID: "d4", Time: t0.Add(2 * time.Hour), Space: "", Host: "h1"},
	}
	if err := ix.PutSnapshots(entries); err != nil {
		t.Fatal(err)
	}
	// Another layout: space first, an escape in the host.
	odd := `{"space":"s1","host":"h\u0031","time":"2024-05-01T11:00:00Z","id":"e5","summary":{"files":5}}`
	if err := ix.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSnapshots).Put([]byte("e5"), []byte(odd)) }); err != nil {
		t.Fatal(err)
	}
	all, err := ix.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	for _, space := range []string{"s1", "s2", "", "s9"} {
		var want []SnapshotEntry
		for _, e := range all {
			if e.Space == space {
				want = append(want, e)
			}
		}
		got, err := ix.SpaceSnapshots(space)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("SpaceSnapshots(%q) = %+v, %v\nwant %+v", space, got, err, want)
		}
	}
	if got, _ := ix.SpaceSnapshots("s1"); len(got) != 3 || got[0].ID != "e5" || got[0].Host != "h1" || string(got[0].Summary) != `{"files":5}` {
		t.Fatalf("SpaceSnapshots(s1) = %+v, want e5 (h1) first, then a1, c3", got)
	}
	heads, err := ix.SnapshotHeads()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, h := range heads {
		if h.ID != all[i].ID || !h.Time.Equal(all[i].Time) || h.Space != all[i].Space {
			t.Fatalf("SnapshotHeads[%d] = %+v, Snapshots has %s %v %q", i, h, all[i].ID, all[i].Time, all[i].Space)
		}
		ids = append(ids, h.ID)
	}
	if want := []string{"e5", "a1", "b2", "c3", "d4"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("SnapshotHeads IDs = %v, want %v", ids, want)
	}
	if err := ix.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSnapshots).Put([]byte("f6"), []byte(`{"id":"f6",`)) }); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"SpaceSnapshots": func() error { _, err := ix.SpaceSnapshots("s2"); return err },
		"SnapshotHeads":  func() error { _, err := ix.SnapshotHeads(); return err },
	} {
		if err := call(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "snapshot f6") {
			t.Fatalf("%s with a damaged entry: %v, want ErrCorrupt naming snapshot f6", name, err)
		}
	}
}
