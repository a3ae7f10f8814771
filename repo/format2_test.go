package repo

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"memento/chunk"
)

// TestTreeFormat2 (issue 17): a tree is written in format 1 unless a node
// needs format 2; format-2 types and fields are refused in a format-1 tree,
// malformed ones in a format-2 tree.
func TestTreeFormat2(t *testing.T) {
	h := Hash{}
	plain := &Tree{Nodes: []*Node{{Name: "f", Type: NodeFile, BLAKE3: &h}}}
	b, err := EncodeTree(plain)
	if err != nil || !strings.HasPrefix(string(b), `{"v":1,`) {
		t.Fatalf("a tree without format-2 nodes encodes as %s, %v", b, err)
	}
	for _, n := range []*Node{
		{Name: "p", Type: NodeFIFO},
		{Name: "d", Type: NodeCharDev, Rdev: 259},
		{Name: "h", Type: NodeFile, BLAKE3: &h, Inode: 7, DeviceID: 1, Links: 2},
		{Name: "x", Type: NodeDir, Subtree: new(chunk.ID), Xattrs: []Xattr{{Name: "user.a", Value: []byte{0}}}},
	} {
		b, err := EncodeTree(&Tree{Nodes: []*Node{n}})
		if err != nil || !strings.HasPrefix(string(b), `{"v":2,`) {
			t.Fatalf("%s encodes as %s, %v", n.Name, b, err)
		}
		if _, err := DecodeTree(b); err != nil {
			t.Errorf("%s: %v", b, err)
		}
		v1 := strings.Replace(string(b), `{"v":2,`, `{"v":1,`, 1)
		if _, err := DecodeTree([]byte(v1)); err == nil {
			t.Errorf("a format-1 tree with a format-2 node is accepted: %s", v1)
		}
	}
	for _, bad := range []string{
		`{"v":2,"nodes":[{"name":"p","type":"fifo","size":3}]}`,
		`{"v":2,"nodes":[{"name":"p","type":"fifo","rdev":3}]}`,
		`{"v":2,"nodes":[{"name":"h","type":"file","blake3":"` + h.String() + `","inode":7,"links":1}]}`,
		`{"v":2,"nodes":[{"name":"h","type":"file","blake3":"` + h.String() + `","links":2}]}`,
		`{"v":2,"nodes":[{"name":"p","type":"fifo","xattrs":[{"name":"user.b","value":""},{"name":"user.a","value":""}]}]}`,
		`{"v":2,"nodes":[{"name":"p","type":"fifo","xattrs":[{"name":"","value":""}]}]}`,
	} {
		if _, err := DecodeTree([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestManifestVersion2 (issue 17): a manifest is version 2 only with a
// layout or the new summary figures; a version-1 manifest with a layout,
// and an unknown layout, are refused as ErrFormat.
func TestManifestVersion2(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	for _, c := range []struct {
		m    Manifest
		want int
	}{
		{Manifest{Time: time.Now().UTC(), Paths: []string{"/x"}}, 1},
		{Manifest{Time: time.Now().UTC(), Paths: []string{"/x"}, Layout: LayoutFull}, 2},
		{Manifest{Time: time.Now().UTC(), Paths: []string{"/x"}, Summary: Summary{Special: 1}}, 2},
	} {
		sn, err := tr.SaveSnapshot(ctx, &c.m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tr.LoadSnapshotFile(ctx, sn.ID)
		if err != nil || got.Version != c.want {
			t.Errorf("%+v: version %d (want %d), %v", c.m, got.Version, c.want, err)
		}
	}
	for _, m := range []*Manifest{
		{Version: 1, Time: time.Now().UTC(), Paths: []string{"/x"}, Layout: LayoutFull},
		{Version: 2, Time: time.Now().UTC(), Paths: []string{"/x"}, Layout: "sideways"},
		{Version: 2, Time: time.Now().UTC(), Space: "s", Paths: []string{"/x"}, Layout: LayoutFull},
	} {
		msg, err := m.signedBytes()
		if err != nil {
			t.Fatal(err)
		}
		m.Signature = ed25519.Sign(tr.signKey, msg)
		id, err := tr.SaveFile(ctx, DirSnapshots, kindSnapshot, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.LoadSnapshotFile(ctx, id); !errors.Is(err, ErrFormat) {
			t.Errorf("manifest version %d layout %q space %q: %v", m.Version, m.Layout, m.Space, err)
		}
	}
}
