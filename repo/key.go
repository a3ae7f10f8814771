package repo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/restic/chunker"
	"github.com/zeebo/blake3"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// masterSecret is everything a password unlocks. It is generated once by init
// and never changes, so adding a key (another password) re-wraps the same secret.
type masterSecret struct {
	Version    int         `json:"version"`
	DataKey    []byte      `json:"data_key"`   // XChaCha20-Poly1305 key, or the MAC key without encryption
	IDKey      []byte      `json:"id_key"`     // master for per-space chunk ID keys
	Polynomial chunker.Pol `json:"polynomial"` // secret: chunk boundaries would otherwise fingerprint content
	SignSeed   []byte      `json:"sign_seed"`  // Ed25519 seed for manifest signatures
}

// KDFParams are argon2id's cost parameters, stored in each key file so that
// they can be raised for new keys without breaking old ones.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// MinKDF is the cheapest setting memento writes by itself: OWASP's argon2id
// minimum (19 MiB, 2 passes, 1 lane; Password Storage Cheat Sheet).
// CalibrateKDF never goes below it; DefaultKDF is it.
var MinKDF = KDFParams{Time: 2, MemoryKiB: 19 << 10, Threads: 1}

// DefaultKDF is what Init uses when it is given no parameters: the floor.
// The command line calibrates instead (CalibrateKDF), as restic does.
// Until 2026-12 it was time 2, 64 MiB, 2 threads (about 0.4 s of CPU per
// command in a fresh process, most of it faulting in the 64 MiB); key files
// keep their own parameters, so those keys open as before.
var DefaultKDF = MinKDF

// Bounds of the argon2id parameters, for writers and readers alike
// (repository-format.md section 4 states them): they keep a hostile key file
// from making every open take minutes or gigabytes, and are far above any
// sane setting.
const (
	maxKDFTime      = 16
	minKDFMemoryKiB = 8
	maxKDFMemoryKiB = 1 << 20 // 1 GiB
)

// validate refuses parameters outside the bounds: a key file written with
// them could never be opened.
func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > maxKDFTime || p.MemoryKiB < minKDFMemoryKiB || p.MemoryKiB > maxKDFMemoryKiB || p.Threads < 1 {
		return fmt.Errorf("implausible argon2id parameters %+v: want time 1..%d, memory_kib %d..%d, threads >= 1",
			p, maxKDFTime, minKDFMemoryKiB, maxKDFMemoryKiB)
	}
	return nil
}

// keyFile is stored under keys/<hash>. With KDF "none" (a repository created
// with --insecure-no-encryption) Data holds the secret in the clear.
type keyFile struct {
	Version  int       `json:"version"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host"`
	Username string    `json:"username"`
	KDF      string    `json:"kdf"` // "argon2id" or "none"
	Params   KDFParams `json:"params"`
	Salt     []byte    `json:"salt,omitempty"`
	Data     []byte    `json:"data"`
}

const keyAD = "memento key v1"

func newMasterSecret() (*masterSecret, error) {
	ms := &masterSecret{Version: 1, DataKey: make([]byte, 32), IDKey: make([]byte, 32), SignSeed: make([]byte, ed25519.SeedSize)}
	for _, b := range [][]byte{ms.DataKey, ms.IDKey, ms.SignSeed} {
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
	}
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return nil, fmt.Errorf("chunker polynomial: %w", err)
	}
	ms.Polynomial = pol
	return ms, nil
}

func (ms *masterSecret) validate() error {
	if len(ms.DataKey) != 32 || len(ms.IDKey) != 32 || len(ms.SignSeed) != ed25519.SeedSize {
		return errors.New("key material has wrong lengths")
	}
	if !ms.Polynomial.Irreducible() {
		return errors.New("chunker polynomial is not irreducible")
	}
	return nil
}

// wrapKey makes a key file for ms. An empty password is refused unless
// insecure is set, in which case the secret is stored unwrapped.
func wrapKey(ms *masterSecret, password string, params KDFParams, insecure bool) ([]byte, error) {
	plain, err := json.Marshal(ms)
	if err != nil {
		return nil, err
	}
	kf := keyFile{Version: 1, Created: time.Now().UTC(), KDF: "none"}
	kf.Host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		kf.Username = u.Username
	}
	if insecure {
		kf.Data = plain
	} else {
		if password == "" {
			return nil, errors.New("empty password")
		}
		if err := params.validate(); err != nil {
			return nil, err
		}
		kf.KDF, kf.Params, kf.Salt = "argon2id", params, make([]byte, 32)
		if _, err := rand.Read(kf.Salt); err != nil {
			return nil, err
		}
		s, err := newAEADSealer(deriveKEK(password, kf.Salt, params))
		if err != nil {
			return nil, err
		}
		kf.Data = s.seal(nil, plain, []byte(keyAD))
	}
	return json.MarshalIndent(kf, "", "  ")
}

func deriveKEK(password string, salt []byte, p KDFParams) []byte {
	defer kdfHugePages(int(p.MemoryKiB) << 10)()
	return argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
}

// unwrapKey opens one key file. It returns ErrWrongPassword when the file is
// intact but the password does not open it.
func unwrapKey(raw []byte, password string) (*masterSecret, error) {
	var kf keyFile
	if err := json.Unmarshal(raw, &kf); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if kf.Version != 1 {
		return nil, fmt.Errorf("%w: key file version %d", ErrFormat, kf.Version)
	}
	var plain []byte
	switch kf.KDF {
	case "none":
		plain = kf.Data
	case "argon2id":
		p := kf.Params
		if err := p.validate(); err != nil {
			return nil, err
		}
		if len(kf.Salt) < 16 {
			return nil, fmt.Errorf("argon2id salt of %d bytes (at least 16)", len(kf.Salt))
		}
		s, err := newAEADSealer(deriveKEK(password, kf.Salt, p))
		if err != nil {
			return nil, err
		}
		plain, err = s.open(nil, kf.Data, []byte(keyAD))
		if err != nil {
			return nil, ErrWrongPassword
		}
	default:
		return nil, fmt.Errorf("unknown kdf %q", kf.KDF)
	}
	var ms masterSecret
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ms); err != nil {
		return nil, fmt.Errorf("master secret: %w", err)
	}
	if err := ms.validate(); err != nil {
		return nil, err
	}
	return &ms, nil
}

// loadMasterSecret tries every key file with the password. It returns the
// secret and the name of the key file that opened it.
func loadMasterSecret(ctx context.Context, be Backend, password string) (*masterSecret, string, error) {
	var names []string
	err := be.List(ctx, DirKeys, func(name string, size int64) error {
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list keys: %w", err)
	}
	if len(names) == 0 {
		return nil, "", Corruptf("repository "+be.Location(), "no key files under keys/")
	}
	var firstErr error
	for _, name := range names {
		raw, err := readKeyFile(ctx, be, name)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			return nil, "", err
		}
		ms, err := unwrapKey(raw, password)
		if err == nil {
			return ms, name, nil
		}
		switch {
		case errors.Is(err, ErrWrongPassword) || firstErr != nil:
		case errors.Is(err, ErrFormat):
			firstErr = fmt.Errorf("key file %s: %w", name, err)
		default:
			firstErr = &CorruptError{What: "key file " + name, Detail: "unreadable", Err: err}
		}
	}
	if firstErr != nil {
		// A damaged key file may be the very one the password opens: that
		// is an integrity failure to report, not a wrong password.
		return nil, "", fmt.Errorf("%w (tried %d key files, none opened with the password)", firstErr, len(names))
	}
	return nil, "", fmt.Errorf("%w for repository %s (tried %d key files)", ErrWrongPassword, be.Location(), len(names))
}

// readKeyFile reads a key file and checks that its content matches its name.
func readKeyFile(ctx context.Context, be Backend, name string) ([]byte, error) {
	raw, err := ReadAll(ctx, be, name, 1<<20)
	if err != nil {
		return nil, err
	}
	if blake3.Sum256(raw) != NameHash(name) {
		return nil, Corruptf("key file "+name, "content does not match its name (the file is damaged)")
	}
	return raw, nil
}

func ReadAll(ctx context.Context, be Backend, name string, limit int64) ([]byte, error) {
	rc, err := be.Open(ctx, name, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, Corruptf(name, "larger than %d bytes", limit)
	}
	return b, nil
}
