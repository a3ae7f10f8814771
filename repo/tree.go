package repo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"memento/chunk"
)

// Node types.
const (
	NodeFile    = "file"
	NodeDir     = "dir"
	NodeSymlink = "symlink"
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
}

// Tree is a directory: its nodes sorted by name. Its blob ID (keyed BLAKE3 of
// its JSON) covers the IDs of all chunks and subtrees below it, which makes a
// snapshot's root ID a Merkle root of every byte it holds.
type Tree struct {
	Version int     `json:"v"`
	Nodes   []*Node `json:"nodes"`
}

const treeVersion = 1

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
	t.Version = treeVersion
	return json.Marshal(t)
}

// DecodeTree parses and validates a tree blob. Trees come from the repository,
// so every field is untrusted: names that could escape a restore target,
// duplicates, and inconsistent node types are rejected here, once.
func DecodeTree(b []byte) (*Tree, error) {
	var t Tree
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	if t.Version != treeVersion {
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
		default:
			return nil, fmt.Errorf("tree: node %q has unknown type %q", n.Name, n.Type)
		}
	}
	return &t, nil
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
