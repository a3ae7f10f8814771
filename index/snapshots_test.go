package index

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
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
