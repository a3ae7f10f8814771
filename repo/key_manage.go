package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/argon2"
)

// KeyInfo describes one key file (`memento key list`). The fields other than
// ID and Current are what the key file says of itself, in the clear.
type KeyInfo struct {
	ID       string    `json:"id"` // the hex hash the key file is named by
	Current  bool      `json:"current"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host"`
	Username string    `json:"username"`
	KDF      string    `json:"kdf"`
	Params   KDFParams `json:"params"`
	Damaged  string    `json:"damaged,omitempty"` // why the file could not be read
}

// ShortID is the first 8 hex digits of the key's ID.
func (k KeyInfo) ShortID() string {
	if len(k.ID) < 8 {
		return k.ID
	}
	return k.ID[:8]
}

// CurrentKey is the ID of the key file that opened the repository (or that
// the cached key came from).
func (r *Repository) CurrentKey() string { return path.Base(r.keyName) }

// Keys lists the key files, oldest first. A damaged one is listed with
// Damaged set rather than failing the list.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	var names []string
	if err := r.be.List(ctx, DirKeys, func(name string, size int64) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(names))
	for _, name := range names {
		ki := KeyInfo{ID: path.Base(name), Current: name == r.keyName}
		raw, err := readKeyFile(ctx, r.be, name)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		var kf keyFile
		if err == nil {
			err = json.Unmarshal(raw, &kf)
		}
		if err != nil {
			ki.Damaged = err.Error()
		} else {
			ki.Created, ki.Host, ki.Username, ki.KDF, ki.Params = kf.Created, kf.Host, kf.Username, kf.KDF, kf.Params
		}
		out = append(out, ki)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// AddKey writes a new key file that opens the repository with password,
// wrapping the same master secret. An insecure repository has no passwords.
func (r *Repository) AddKey(ctx context.Context, password string, params KDFParams) (KeyInfo, error) {
	if r.cfg.Encryption == EncryptionNone {
		return KeyInfo{}, fmt.Errorf("%w: the repository is not encrypted (init --insecure-no-encryption): it has no passwords to add", ErrInvalidArgument)
	}
	raw, err := wrapKey(r.ms, password, params, false)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	name := FileName(DirKeys, blake3.Sum256(raw))
	if err := r.be.Write(ctx, name, bytes.NewReader(raw), int64(len(raw))); err != nil {
		return KeyInfo{}, fmt.Errorf("write key: %w", err)
	}
	var kf keyFile
	_ = json.Unmarshal(raw, &kf)
	return KeyInfo{ID: path.Base(name), Created: kf.Created, Host: kf.Host, Username: kf.Username, KDF: kf.KDF, Params: kf.Params}, nil
}

// FindKey resolves a key ID or a unique prefix of at least 4 hex digits.
func (r *Repository) FindKey(ctx context.Context, ref string) (KeyInfo, error) {
	ref = strings.ToLower(ref)
	if _, err := hex.DecodeString(ref + strings.Repeat("0", len(ref)%2)); err != nil || len(ref) < 4 {
		return KeyInfo{}, fmt.Errorf("key %q: %w: want at least 4 hex digits of a key ID ('memento key list')", ref, ErrInvalidArgument)
	}
	keys, err := r.Keys(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	var match []KeyInfo
	for _, k := range keys {
		if strings.HasPrefix(k.ID, ref) {
			match = append(match, k)
		}
	}
	switch len(match) {
	case 0:
		return KeyInfo{}, fmt.Errorf("key %s: %w", ref, ErrNotFound)
	case 1:
		return match[0], nil
	}
	return KeyInfo{}, fmt.Errorf("key %s: %w: prefix is ambiguous (%d keys match)", ref, ErrInvalidArgument, len(match))
}

// ErrKeyInUse is returned by RemoveKey for the key that opened the
// repository, and for the last key (nobody could open the repository).
var ErrKeyInUse = errors.New("refusing to remove the key")

// RemoveKey deletes a key file. It refuses the key in use (change its
// password with ChangePassword, or open with another key to remove it) and
// the last key of the repository.
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	keys, err := r.Keys(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, k := range keys {
		found = found || k.ID == id
	}
	switch {
	case !found:
		return fmt.Errorf("key %s: %w", id, ErrNotFound)
	case DirKeys+"/"+id == r.keyName:
		return fmt.Errorf("key %s: %w: it is the key in use (open the repository with another password to remove it, or change its password with 'memento key passwd')", id[:8], ErrKeyInUse)
	case len(keys) == 1:
		return fmt.Errorf("key %s: %w: it is the last key of the repository", id[:8], ErrKeyInUse)
	}
	if err := r.be.Delete(ctx, DirKeys+"/"+id); err != nil {
		return fmt.Errorf("remove key %s: %w", id[:8], err)
	}
	return nil
}

// ChangePassword replaces the key in use by one for the new password (with
// params): the new key file is written before the old one is deleted, so an
// interruption leaves both, never neither.
func (r *Repository) ChangePassword(ctx context.Context, password string, params KDFParams) (KeyInfo, error) {
	old := r.keyName
	ki, err := r.AddKey(ctx, password, params)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := r.be.Delete(ctx, old); err != nil {
		return ki, fmt.Errorf("the new key %s was added, but removing the old one %s failed (remove it with 'memento key remove'): %w", ki.ShortID(), path.Base(old)[:8], err)
	}
	r.keyName = DirKeys + "/" + ki.ID
	ki.Current = true
	return ki, nil
}

// KDFFloorOK reports whether p is at least as costly as MinKDF (OWASP's
// minimum: 19 MiB × 2 passes, or more memory and fewer passes with the same
// product, with at least 19 MiB), for a warning about weaker keys.
func (p KDFParams) KDFFloorOK() bool {
	return p.MemoryKiB >= MinKDF.MemoryKiB && uint64(p.MemoryKiB)*uint64(p.Time) >= uint64(MinKDF.MemoryKiB)*uint64(MinKDF.Time)
}

// CalibrateKDF picks argon2id parameters that cost about target of CPU
// time per unlock on this machine, as restic does at init: MinKDF's memory
// and lane, and as many passes as fit in target, never fewer than MinKDF's
// nor more than the readers' bound. It measures process CPU time rather than
// wall time, so a loaded host does not make it pick a weaker setting; a
// measurement costs about two unlocks.
func CalibrateKDF(target time.Duration) KDFParams {
	p := MinKDF
	var best time.Duration
	for range 2 { // the first run also faults in the memory: keep the fastest
		c0 := cpuTime()
		argon2.IDKey([]byte("calibration"), make([]byte, 32), 1, p.MemoryKiB, p.Threads, 32)
		if d := cpuTime() - c0; best == 0 || (d > 0 && d < best) {
			best = d
		}
	}
	if best <= 0 {
		return p
	}
	t := uint32(target / best)
	p.Time = min(max(t, MinKDF.Time), maxKDFTime)
	return p
}

// cpuTime is the CPU time the process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
