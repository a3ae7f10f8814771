package repo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"memento/chunk"
)

// Node types.
const (
	NodeFile    = "file"
	NodeDir     = "dir"
	NodeSymlink = "symlink"
	// Special files (tree format 2): a FIFO, a socket, character and block
	// devices. They have no content; devices record their device number.
	NodeFIFO     = "fifo"
	NodeSocket   = "socket"
	NodeCharDev  = "chardev"
	NodeBlockDev = "blockdev"
)

// Hash is a plain (unkeyed) BLAKE3-256, used for whole-file digests so that an
// operator can compare a restored file with b3sum output.
type Hash [32]byte

func (h Hash) String() string                { return hex.EncodeToString(h[:]) }
func (h Hash) MarshalText() ([]byte, error)  { return []byte(h.String()), nil }
func (h *Hash) UnmarshalText(b []byte) error { return decodeHex32((*[32]byte)(h), b) }

func decodeHex32(dst *[32]byte, b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("hash %q: want 64 hex digits", b)
	}
	_, err := hex.Decode(dst[:], b)
	return err
}

// Node is one entry of a directory. Files list their chunk IDs in order and the
// BLAKE3 of their whole content; directories point to their subtree. Inode and
// CTimeNS exist only for change detection by the next backup.
type Node struct {
	Name       string     `json:"name"`
	Type       string     `json:"type"`
	Mode       uint32     `json:"mode"` // permission, setuid, setgid and sticky bits (os.FileMode)
	MTimeNS    int64      `json:"mtime_ns"`
	UID        uint32     `json:"uid"`
	GID        uint32     `json:"gid"`
	Size       uint64     `json:"size,omitempty"`
	Content    []chunk.ID `json:"content,omitempty"`
	BLAKE3     *Hash      `json:"blake3,omitempty"`
	Subtree    *chunk.ID  `json:"subtree,omitempty"`
	LinkTarget string     `json:"link_target,omitempty"`
	Inode      uint64     `json:"inode,omitempty"`
	CTimeNS    int64      `json:"ctime_ns,omitempty"`

	// Tree format 2 only (see treeVersionFor). Rdev is a device node's
	// device number (unix.Mkdev). DeviceID and Links are set on a regular
	// file with more than one hard link: the files of one snapshot with the
	// same (DeviceID, Inode) are one file, restored as hard links. Xattrs
	// are the extended attributes, sorted by name.
	Rdev     uint64  `json:"rdev,omitempty"`
	DeviceID uint64  `json:"device_id,omitempty"`
	Links    uint64  `json:"links,omitempty"`
	Xattrs   []Xattr `json:"xattrs,omitempty"`
}

// Xattr is one extended attribute; Value is base64 in JSON.
type Xattr struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// Equal reports whether n and o hold the same entry, field by field: a
// tree of equal nodes encodes to the same blob. (TestNodeEqualCoversEveryField
// fails when a field is added to Node and not compared here.)
func (n *Node) Equal(o *Node) bool {
	if n == nil || o == nil {
		return n == o
	}
	return n.Name == o.Name && n.Type == o.Type && n.Mode == o.Mode && n.MTimeNS == o.MTimeNS &&
		n.UID == o.UID && n.GID == o.GID && n.Size == o.Size && slices.Equal(n.Content, o.Content) &&
		equalPtr(n.BLAKE3, o.BLAKE3) && equalPtr(n.Subtree, o.Subtree) && n.LinkTarget == o.LinkTarget &&
		n.Inode == o.Inode && n.CTimeNS == o.CTimeNS && n.Rdev == o.Rdev && n.DeviceID == o.DeviceID &&
		n.Links == o.Links && slices.EqualFunc(n.Xattrs, o.Xattrs, func(a, b Xattr) bool {
		return a.Name == b.Name && bytes.Equal(a.Value, b.Value)
	})
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// HardLinked reports whether n is a regular file that shares its inode
// with other names (its hard-link group is (DeviceID, Inode)).
func (n *Node) HardLinked() bool { return n.Type == NodeFile && n.Links > 1 }

// Special reports whether n is a FIFO, socket or device node.
func (n *Node) Special() bool {
	switch n.Type {
	case NodeFIFO, NodeSocket, NodeCharDev, NodeBlockDev:
		return true
	}
	return false
}

// usesV2 reports whether n needs tree format 2.
func (n *Node) usesV2() bool {
	return n.Special() || n.Rdev != 0 || n.DeviceID != 0 || n.Links != 0 || len(n.Xattrs) > 0
}

// Tree is a directory: its nodes sorted by name. Its blob ID (keyed BLAKE3 of
// its JSON) covers the IDs of all chunks and subtrees below it, which makes a
// snapshot's root ID a Merkle root of every byte it holds.
type Tree struct {
	Version int     `json:"v"`
	Nodes   []*Node `json:"nodes"`
}

// Tree format versions. Format 2 adds special files, hard links and
// extended attributes (Node's Rdev, DeviceID, Links, Xattrs). A tree is
// written as format 1 when no node uses any of them, so a tree that format
// 1 can express keeps its ID (and its dedup with older snapshots) and older
// binaries still read it.
const (
	treeVersion1  = 1
	treeVersion2  = 2
	maxXattrBytes = 64 << 10 // Linux's limit for one value (XATTR_SIZE_MAX)
)

func treeVersionFor(t *Tree) int {
	for _, n := range t.Nodes {
		if n != nil && n.usesV2() {
			return treeVersion2
		}
	}
	return treeVersion1
}

// Find returns the node called name, or nil.
func (t *Tree) Find(name string) *Node {
	lo, hi := 0, len(t.Nodes)
	for lo < hi {
		m := (lo + hi) / 2
		if t.Nodes[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(t.Nodes) && t.Nodes[lo].Name == name {
		return t.Nodes[lo]
	}
	return nil
}

func EncodeTree(t *Tree) ([]byte, error) {
	t.Version = treeVersionFor(t)
	return json.Marshal(t)
}

// DecodeTree parses and validates a tree blob. Trees come from the repository,
// so every field is untrusted: names that could escape a restore target,
// duplicates, and inconsistent node types are rejected here, once.
func DecodeTree(b []byte) (*Tree, error) {
	t, ok := decodeTreeFast(b)
	if !ok {
		var err error
		if t, err = decodeTreeJSON(b); err != nil {
			return nil, err
		}
	}
	if t.Version != treeVersion1 && t.Version != treeVersion2 {
		return nil, fmt.Errorf("tree: %w: version %d", ErrFormat, t.Version)
	}
	for i, n := range t.Nodes {
		if n == nil {
			return nil, fmt.Errorf("tree: node %d is null", i)
		}
		if err := ValidName(n.Name); err != nil {
			return nil, err
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("tree: nodes not sorted or duplicated at %q", n.Name)
		}
		switch n.Type {
		case NodeFile:
			if n.Subtree != nil || n.LinkTarget != "" {
				return nil, fmt.Errorf("tree: file %q has a subtree or link target", n.Name)
			}
			if n.BLAKE3 == nil {
				return nil, fmt.Errorf("tree: file %q has no BLAKE3", n.Name)
			}
			if n.Size > 0 && len(n.Content) == 0 {
				return nil, fmt.Errorf("tree: file %q of %d bytes has no chunks", n.Name, n.Size)
			}
		case NodeDir:
			if n.Subtree == nil || len(n.Content) > 0 {
				return nil, fmt.Errorf("tree: directory %q has no subtree or has content", n.Name)
			}
		case NodeSymlink:
			if n.LinkTarget == "" || len(n.Content) > 0 || n.Subtree != nil || strings.IndexByte(n.LinkTarget, 0) >= 0 {
				return nil, fmt.Errorf("tree: symlink %q is malformed", n.Name)
			}
		case NodeFIFO, NodeSocket, NodeCharDev, NodeBlockDev:
			if t.Version < treeVersion2 {
				return nil, fmt.Errorf("tree: node %q has unknown type %q", n.Name, n.Type)
			}
			if len(n.Content) > 0 || n.Subtree != nil || n.LinkTarget != "" || n.BLAKE3 != nil || n.Size != 0 {
				return nil, fmt.Errorf("tree: %s %q has content, a subtree or a link target", n.Type, n.Name)
			}
		default:
			return nil, fmt.Errorf("tree: node %q has unknown type %q", n.Name, n.Type)
		}
		if err := validV2Fields(t.Version, n); err != nil {
			return nil, err
		}
		if len(n.Xattrs) == 0 {
			n.Xattrs = nil // "xattrs":[] is none, as EncodeTree writes it
		}
	}
	return t, nil
}

// decodeTreeJSON is the tree's decoding by encoding/json, which defines
// what a stored tree may be (decodeTreeFast is a shortcut for the trees
// EncodeTree writes).
func decodeTreeJSON(b []byte) (*Tree, error) {
	var t Tree
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	return &t, nil
}

// validV2Fields checks the fields tree format 2 added: absent in format 1,
// consistent in format 2.
func validV2Fields(version int, n *Node) error {
	if version < treeVersion2 {
		if n.usesV2() {
			return fmt.Errorf("tree: %w: node %q has format-2 fields in a format-1 tree", ErrFormat, n.Name)
		}
		return nil
	}
	if n.Rdev != 0 && n.Type != NodeCharDev && n.Type != NodeBlockDev {
		return fmt.Errorf("tree: %s %q has a device number", n.Type, n.Name)
	}
	if (n.Links != 0 || n.DeviceID != 0) && (n.Type != NodeFile || n.Links < 2 || n.Inode == 0) {
		return fmt.Errorf("tree: %s %q has a malformed hard-link group", n.Type, n.Name)
	}
	for i, x := range n.Xattrs {
		if x.Name == "" || strings.IndexByte(x.Name, 0) >= 0 || len(x.Name) > 255 || len(x.Value) > maxXattrBytes {
			return fmt.Errorf("tree: %q has a malformed extended attribute", n.Name)
		}
		if i > 0 && n.Xattrs[i-1].Name >= x.Name {
			return fmt.Errorf("tree: %q: extended attributes not sorted or duplicated at %q", n.Name, x.Name)
		}
	}
	return nil
}

// ValidName reports whether name can be a single path element inside a restore
// target. Anything that could step outside (.., /, NUL) wraps ErrUnsafePath.
func ValidName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: entry name %q", ErrUnsafePath, name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: entry name %q contains '/' or NUL", ErrUnsafePath, name)
	case len(name) > 4096:
		return fmt.Errorf("%w: entry name of %d bytes", ErrUnsafePath, len(name))
	}
	return nil
}

// JoinRel joins a slash-separated path inside a snapshot tree and a name
// ("" is the tree's root).
func JoinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// DisplayRel shows a path inside a snapshot tree to an operator ("/" for
// the root).
func DisplayRel(rel string) string {
	if rel == "" {
		return "/"
	}
	return rel
}
