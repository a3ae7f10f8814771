package repo

import (
	"encoding/hex"
	"path"
)

// Directories of a repository.
const (
	DirData      = "data"
	DirIndex     = "index"
	DirSnapshots = "snapshots"
	DirKeys      = "keys"
	DirLocks     = "locks"
)

// FileName is where a file named by hash id lives. Packs are fanned out over
// 256 subdirectories so that no directory grows huge on a local filesystem.
func FileName(dir string, id [32]byte) string {
	h := hex.EncodeToString(id[:])
	if dir == DirData {
		return dir + "/" + h[:2] + "/" + h
	}
	return dir + "/" + h
}

// NameHash parses the hash a file is named by; a malformed name gives the zero
// hash, which no content has, so the caller's comparison fails loudly.
func NameHash(name string) [32]byte {
	var id [32]byte
	b, err := hex.DecodeString(path.Base(name))
	if err != nil || len(b) != 32 {
		return id
	}
	return [32]byte(b)
}

func ShortHex(id [32]byte) string { return hex.EncodeToString(id[:4]) }
