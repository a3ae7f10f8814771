package repo

import (
	"reflect"
	"testing"

	"memento/chunk"
)

func equalTestNode() *Node {
	h := Hash{1, 2, 3}
	sub := chunk.ID{9}
	return &Node{Name: "a", Type: NodeFile, Mode: 0o644, MTimeNS: 5, UID: 1, GID: 2, Size: 7,
		Content: []chunk.ID{{4}, {5}}, BLAKE3: &h, Subtree: &sub, LinkTarget: "t", Inode: 8, CTimeNS: 6,
		Rdev: 3, DeviceID: 11, Links: 2, Xattrs: []Xattr{{Name: "user.a", Value: []byte("v")}}}
}

// TestNodeEqualCoversEveryField changes each field of Node in turn (by
// reflection, so that a field added later is changed too) and requires
// Equal to see the change: a backup reuses the parent's tree blob when
// Equal holds for every node, so a field Equal ignored would be lost.
func TestNodeEqualCoversEveryField(t *testing.T) {
	a := equalTestNode()
	if !a.Equal(equalTestNode()) {
		t.Fatal("two equal nodes compare unequal")
	}
	if a.Equal(nil) || (*Node)(nil).Equal(a) || !(*Node)(nil).Equal(nil) {
		t.Fatal("nil handling")
	}
	typ := reflect.TypeOf(Node{})
	for i := range typ.NumField() {
		b := equalTestNode()
		f := reflect.ValueOf(b).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Uint32, reflect.Uint64:
			f.SetUint(f.Uint() + 1)
		case reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Pointer:
			e := f.Elem() // a [32]byte array: change its first byte
			e.Index(0).SetUint(e.Index(0).Uint() + 1)
		case reflect.Slice:
			switch s := f.Addr().Interface().(type) {
			case *[]chunk.ID:
				(*s)[1][0]++
			case *[]Xattr:
				(*s)[0].Value = []byte("w")
			default:
				t.Fatalf("field %s: slice type %s not covered by this test: extend it and Node.Equal", typ.Field(i).Name, f.Type())
			}
		default:
			t.Fatalf("field %s: kind %s not covered by this test: extend it and Node.Equal", typ.Field(i).Name, f.Kind())
		}
		if a.Equal(b) {
			t.Errorf("Equal ignores a change of field %s", typ.Field(i).Name)
		}
	}
	// A changed xattr name and an extra xattr are changes too.
	b := equalTestNode()
	b.Xattrs[0].Name = "user.b"
	c := equalTestNode()
	c.Xattrs = append(c.Xattrs, Xattr{Name: "user.c"})
	if a.Equal(b) || a.Equal(c) {
		t.Error("Equal ignores a changed xattr name or an added xattr")
	}
}
