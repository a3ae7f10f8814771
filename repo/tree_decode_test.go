package repo

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"memento/chunk"
)

// goldenTree is a format-1 tree as EncodeTree writes it, with every field
// decodeTreeFast reads, and goldenTreeNodes what it decodes to. The bytes
// are the stored form: they never change.
const goldenTree = `{"v":1,"nodes":[` +
	`{"name":"a.txt","type":"file","mode":420,"mtime_ns":1700000000123456789,"uid":1000,"gid":100,"size":70000,` +
	`"content":["0101010101010101010101010101010101010101010101010101010101010101","0202020202020202020202020202020202020202020202020202020202020202"],` +
	`"blake3":"abababababababababababababababababababababababababababababababab","inode":4294967301,"ctime_ns":-5},` +
	`{"name":"d","type":"dir","mode":2147484141,"mtime_ns":0,"uid":0,"gid":0,` +
	`"subtree":"CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD"},` +
	`{"name":"empty","type":"file","mode":384,"mtime_ns":-9223372036854775808,"uid":4294967295,"gid":7,` +
	`"blake3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},` +
	`{"name":"l\u00e9","type":"symlink","mode":511,"mtime_ns":9223372036854775807,"uid":1,"gid":2,"link_target":"../x y/é"}]}`

func goldenTreeNodes() []*Node {
	rep := func(c byte) (id chunk.ID) {
		for i := range id {
			id[i] = c
		}
		return id
	}
	h, sub := Hash(rep(0xab)), rep(0xcd)
	var empty Hash
	if err := empty.UnmarshalText([]byte("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")); err != nil {
		panic(err)
	}
	return []*Node{
		{Name: "a.txt", Type: NodeFile, Mode: 420, MTimeNS: 1700000000123456789, UID: 1000, GID: 100, Size: 70000,
			Content: []chunk.ID{rep(1), rep(2)}, BLAKE3: &h, Inode: 4294967301, CTimeNS: -5},
		{Name: "d", Type: NodeDir, Mode: 2147484141, Subtree: &sub},
		{Name: "empty", Type: NodeFile, Mode: 384, MTimeNS: math.MinInt64, UID: math.MaxUint32, GID: 7, BLAKE3: &empty},
		{Name: "lé", Type: NodeSymlink, Mode: 511, MTimeNS: math.MaxInt64, UID: 1, GID: 2, LinkTarget: "../x y/é"},
	}
}

// TestDecodeTreeGolden: the golden tree decodes to its nodes, by
// encoding/json and by decodeTreeFast alike (the \u00e9 escape in one name
// sends it to encoding/json as a whole; without it the shortcut takes it).
func TestDecodeTreeGolden(t *testing.T) {
	want := &Tree{Version: 1, Nodes: goldenTreeNodes()}
	for _, in := range []string{goldenTree, strings.Replace(goldenTree, `l\u00e9`, "lé", 1)} {
		got, err := DecodeTree([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeTree(%s) = %+v, want %+v", in, got, want)
		}
		viaJSON, err := decodeTreeJSON([]byte(in))
		if err != nil || !reflect.DeepEqual(viaJSON, want) {
			t.Fatalf("encoding/json: %+v, %v", viaJSON, err)
		}
	}
	fast, ok := decodeTreeFast([]byte(strings.Replace(goldenTree, `l\u00e9`, "lé", 1)))
	if !ok || !reflect.DeepEqual(fast, want) {
		t.Fatalf("decodeTreeFast = %+v, %v; want %+v", fast, ok, want)
	}
}

// TestDecodeTreeFastTakesEncodeTree: every tree EncodeTree writes without
// extended attributes or escaped characters is decoded by the shortcut, to
// what encoding/json decodes.
func TestDecodeTreeFastTakesEncodeTree(t *testing.T) {
	trees := []*Tree{
		{Nodes: goldenTreeNodes()},
		{Nodes: []*Node{}},
		{Nodes: []*Node{{Name: "c", Type: NodeCharDev, Mode: 0o600, Rdev: 259}, {Name: "f", Type: NodeFIFO},
			{Name: "h", Type: NodeFile, BLAKE3: new(Hash), Inode: 9, DeviceID: 2049, Links: 2}, {Name: "s", Type: NodeSocket}}},
	}
	for _, tr := range trees {
		b, err := EncodeTree(tr)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := decodeTreeFast(b)
		if !ok {
			t.Fatalf("decodeTreeFast refused EncodeTree's %s", b)
		}
		viaJSON, err := decodeTreeJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, viaJSON) {
			t.Fatalf("%s: decodeTreeFast %+v, encoding/json %+v", b, fast, viaJSON)
		}
	}
}

// decodeTreeFastRefuses are inputs the shortcut must leave to
// encoding/json: each decodes differently there, or is refused there, or
// needs what the shortcut does not read.
var decodeTreeFastRefuses = []string{
	` {"v":1,"nodes":[]}`,
	`{"v":1,"nodes":[]} `,
	`{"v":1,"nodes":[]}x`,
	`{"v":1, "nodes":[]}`,
	`{"V":1,"nodes":[]}`,
	`{"v":1,"Nodes":[]}`,
	`{"v":1,"v":2,"nodes":[]}`,
	`{"v":1,"nodes":[],"nodes":[]}`,
	`{"v":1,"nodes":null}`,
	`{"v":1,"nodes":[null]}`,
	`{"v":1.0,"nodes":[]}`,
	`{"v":1e0,"nodes":[]}`,
	`{"v":01,"nodes":[]}`,
	`{"v":"1","nodes":[]}`,
	`{"v":1,"nodes":[],"x":1}`,
	`{"v":1,"nodes":[{"name":"a","name":"b"}]}`,
	`{"v":1,"nodes":[{"Name":"a"}]}`,
	`{"v":1,"nodes":[{"name":"a\"b"}]}`,
	`{"v":1,"nodes":[{"name":"a\u0041"}]}`,
	"{\"v\":1,\"nodes\":[{\"name\":\"a\x01\"}]}",
	"{\"v\":1,\"nodes\":[{\"name\":\"a\xff\"}]}",
	`{"v":1,"nodes":[{"name":null}]}`,
	`{"v":1,"nodes":[{"mode":-0}]}`,
	`{"v":1,"nodes":[{"mode":-1}]}`,
	`{"v":1,"nodes":[{"mode":4294967296}]}`,
	`{"v":1,"nodes":[{"size":18446744073709551616}]}`,
	`{"v":1,"nodes":[{"mtime_ns":9223372036854775808}]}`,
	`{"v":1,"nodes":[{"mtime_ns":-9223372036854775809}]}`,
	`{"v":1,"nodes":[{"content":[]}]}`,
	`{"v":1,"nodes":[{"content":null}]}`,
	`{"v":1,"nodes":[{"blake3":null}]}`,
	`{"v":1,"nodes":[{"blake3":"ab"}]}`,
	`{"v":1,"nodes":[{"subtree":"zz` + strings.Repeat("0", 62) + `"}]}`,
	`{"v":2,"nodes":[{"xattrs":[{"name":"user.a","value":"eA=="}]}]}`,
	`{"v":2,"nodes":[{"xattrs":[]}]}`,
	`{"v":1,"nodes":[{"name":"a"},]}`,
	`{"v":1,"nodes":[{"name":"a",}]}`,
	`{"v":1,"nodes":[],}`,
	`{"v":1,"nodes":[{"name":"a"}`,
	`{"v":1,"nodes":[{"content":["` + strings.Repeat("0", 64) + `",]}]}`,
}

// TestDecodeTreeFastRefuses: the shortcut takes none of
// decodeTreeFastRefuses, and DecodeTree's result or error on each is
// encoding/json's.
func TestDecodeTreeFastRefuses(t *testing.T) {
	for _, in := range decodeTreeFastRefuses {
		if tr, ok := decodeTreeFast([]byte(in)); ok {
			t.Errorf("decodeTreeFast took %q as %+v", in, tr)
		}
		checkDecodeTreeFast(t, []byte(in))
	}
}

// checkDecodeTreeFast fails if decodeTreeFast takes b and encoding/json
// refuses it or decodes it to another Tree.
func checkDecodeTreeFast(t *testing.T, b []byte) {
	t.Helper()
	fast, ok := decodeTreeFast(b)
	if !ok {
		return
	}
	viaJSON, err := decodeTreeJSON(b)
	if err != nil {
		t.Fatalf("decodeTreeFast took %q, encoding/json refuses it: %v", b, err)
	}
	if !reflect.DeepEqual(fast, viaJSON) {
		t.Fatalf("%q: decodeTreeFast %+v, encoding/json %+v", b, fast, viaJSON)
	}
}

// FuzzDecodeTreeFast holds decodeTreeFast to encoding/json: whatever it
// takes, encoding/json takes too, with the same result.
func FuzzDecodeTreeFast(f *testing.F) {
	f.Add([]byte(goldenTree))
	f.Add([]byte(strings.Replace(goldenTree, `l\u00e9`, "lé", 1)))
	for _, in := range decodeTreeFastRefuses {
		f.Add([]byte(in))
	}
	f.Fuzz(checkDecodeTreeFast)
}
