package repo

import (
	"encoding/hex"
	"math"
	"unicode/utf8"

	"memento/chunk"
)

// decodeTreeFast parses the tree JSON that EncodeTree writes (json.Marshal
// of Tree: no whitespace, the fields' own names, no escapes in the common
// case) without encoding/json's reflection, which cost an unchanged backup
// of 68,000 directories most of the time it spent on its parent's trees
// (docs/benchmarks.md, "Issue 18, session 26"). It is a shortcut, never a
// second definition of the stored form: it returns ok only for input whose
// decoding by encoding/json (DecodeTree's json.Decoder with
// DisallowUnknownFields) gives exactly the same Tree, and false for
// anything else — whitespace, escapes, null, a field twice, a field name
// in another case, a number that is not a plain integer in range, extended
// attributes, empty content lists, bytes after the tree — which DecodeTree
// then hands to encoding/json: what it accepts, with what result, and what
// it refuses, with what error, stays encoding/json's. FuzzDecodeTreeFast
// holds the two to that.
func decodeTreeFast(b []byte) (*Tree, bool) {
	d := treeScanner{b: b}
	t := &Tree{}
	if !d.lit('{') {
		return nil, false
	}
	var seenV, seenNodes bool
	if !d.lit('}') {
		for {
			key, ok := d.key()
			if !ok {
				return nil, false
			}
			switch key {
			case "v":
				v, ok := d.int(math.MinInt, math.MaxInt)
				if !ok || seenV {
					return nil, false
				}
				t.Version, seenV = int(v), true
			case "nodes":
				if seenNodes || !d.nodes(t) {
					return nil, false
				}
				seenNodes = true
			default:
				return nil, false
			}
			if d.lit('}') {
				break
			}
			if !d.lit(',') {
				return nil, false
			}
		}
	}
	if d.i != len(d.b) {
		return nil, false
	}
	return t, true
}

// treeScanner reads b from i; every method returns false on anything
// decodeTreeFast leaves to encoding/json.
type treeScanner struct {
	b []byte
	i int
}

// lit consumes c if it is the next byte.
func (d *treeScanner) lit(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str returns the raw bytes of a string with no escape, no control
// character and valid UTF-8 (which encoding/json returns unchanged).
func (d *treeScanner) str() ([]byte, bool) {
	if !d.lit('"') {
		return nil, false
	}
	start, ascii := d.i, true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return nil, false
}

// key reads `"name":`.
func (d *treeScanner) key() (string, bool) {
	k, ok := d.str()
	if !ok || !d.lit(':') {
		return "", false
	}
	return string(k), true // no allocation: the switch on it compares
}

// digits reads a JSON integer: -?(0|[1-9][0-9]*), not followed by a
// fraction or an exponent (left to encoding/json, which refuses them for
// an integer field).
func (d *treeScanner) digits() (neg bool, u uint64, ok bool) {
	neg = d.lit('-')
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		c := uint64(d.b[d.i] - '0')
		if u > (math.MaxUint64-c)/10 {
			return false, 0, false // out of range: encoding/json's error
		}
		u = u*10 + c
		d.i++
	}
	n := d.i - start
	if n == 0 || (n > 1 && d.b[start] == '0') {
		return false, 0, false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return false, 0, false
	}
	return neg, u, true
}

// int reads an integer in [lo, hi].
func (d *treeScanner) int(lo, hi int64) (int64, bool) {
	neg, u, ok := d.digits()
	if !ok {
		return 0, false
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		v := -int64(u) // 1<<63 converts to math.MinInt64, its own negation
		if v < lo {
			return 0, false
		}
		return v, true
	}
	if u > uint64(hi) {
		return 0, false
	}
	return int64(u), true
}

// uint reads an unsigned integer up to max ("-0" is left to
// encoding/json, which refuses a sign for an unsigned field).
func (d *treeScanner) uint(max uint64) (uint64, bool) {
	neg, u, ok := d.digits()
	if !ok || neg || u > max {
		return 0, false
	}
	return u, true
}

// hex32 reads a string of 64 hex digits (either case, as Hash's and
// chunk.ID's UnmarshalText take them) into dst.
func (d *treeScanner) hex32(dst *[32]byte) bool {
	s, ok := d.str()
	if !ok || len(s) != 64 {
		return false
	}
	_, err := hex.Decode(dst[:], s)
	return err == nil
}

// nodes reads the array of nodes into t.Nodes.
func (d *treeScanner) nodes(t *Tree) bool {
	if !d.lit('[') {
		return false // null or not an array
	}
	t.Nodes = []*Node{}
	if d.lit(']') {
		return true
	}
	for {
		n := &Node{}
		if !d.node(n) {
			return false
		}
		t.Nodes = append(t.Nodes, n)
		if d.lit(']') {
			return true
		}
		if !d.lit(',') {
			return false
		}
	}
}

// Node fields, as bits of the set a node has seen.
const (
	fName = 1 << iota
	fType
	fMode
	fMTime
	fUID
	fGID
	fSize
	fContent
	fBLAKE3
	fSubtree
	fLinkTarget
	fInode
	fCTime
	fRdev
	fDeviceID
	fLinks
)

// node reads one node object.
func (d *treeScanner) node(n *Node) bool {
	if !d.lit('{') {
		return false // null or not an object
	}
	if d.lit('}') {
		return true
	}
	var seen int
	for {
		key, ok := d.key()
		if !ok {
			return false
		}
		var f int
		switch key {
		case "name":
			f = fName
			s, ok := d.str()
			if !ok {
				return false
			}
			n.Name = string(s)
		case "type":
			f = fType
			s, ok := d.str()
			if !ok {
				return false
			}
			n.Type = nodeType(s)
		case "mode":
			f = fMode
			if !d.uint32(&n.Mode) {
				return false
			}
		case "mtime_ns":
			f = fMTime
			if n.MTimeNS, ok = d.int(math.MinInt64, math.MaxInt64); !ok {
				return false
			}
		case "uid":
			f = fUID
			if !d.uint32(&n.UID) {
				return false
			}
		case "gid":
			f = fGID
			if !d.uint32(&n.GID) {
				return false
			}
		case "size":
			f = fSize
			if n.Size, ok = d.uint(math.MaxUint64); !ok {
				return false
			}
		case "content":
			f = fContent
			if !d.content(n) {
				return false
			}
		case "blake3":
			f = fBLAKE3
			n.BLAKE3 = new(Hash)
			if !d.hex32((*[32]byte)(n.BLAKE3)) {
				return false
			}
		case "subtree":
			f = fSubtree
			n.Subtree = new(chunk.ID)
			if !d.hex32((*[32]byte)(n.Subtree)) {
				return false
			}
		case "link_target":
			f = fLinkTarget
			s, ok := d.str()
			if !ok {
				return false
			}
			n.LinkTarget = string(s)
		case "inode":
			f = fInode
			if n.Inode, ok = d.uint(math.MaxUint64); !ok {
				return false
			}
		case "ctime_ns":
			f = fCTime
			if n.CTimeNS, ok = d.int(math.MinInt64, math.MaxInt64); !ok {
				return false
			}
		case "rdev":
			f = fRdev
			if n.Rdev, ok = d.uint(math.MaxUint64); !ok {
				return false
			}
		case "device_id":
			f = fDeviceID
			if n.DeviceID, ok = d.uint(math.MaxUint64); !ok {
				return false
			}
		case "links":
			f = fLinks
			if n.Links, ok = d.uint(math.MaxUint64); !ok {
				return false
			}
		default: // xattrs (base64), another case, an unknown field: encoding/json's
			return false
		}
		if seen&f != 0 {
			return false // a field twice: encoding/json's (the last one wins there)
		}
		seen |= f
		if d.lit('}') {
			return true
		}
		if !d.lit(',') {
			return false
		}
	}
}

// uint32 reads a plain integer in uint32's range into v.
func (d *treeScanner) uint32(v *uint32) bool {
	u, ok := d.uint(math.MaxUint32)
	*v = uint32(u)
	return ok
}

// content reads a non-empty array of chunk IDs.
func (d *treeScanner) content(n *Node) bool {
	if !d.lit('[') || d.lit(']') {
		return false // null, not an array, or empty: encoding/json's
	}
	for {
		var id chunk.ID
		if !d.hex32((*[32]byte)(&id)) {
			return false
		}
		n.Content = append(n.Content, id)
		if d.lit(']') {
			return true
		}
		if !d.lit(',') {
			return false
		}
	}
}

// nodeType returns the node type constant s spells, so that the common
// types cost no allocation.
func nodeType(s []byte) string {
	switch string(s) {
	case NodeFile:
		return NodeFile
	case NodeDir:
		return NodeDir
	case NodeSymlink:
		return NodeSymlink
	}
	return string(s)
}
