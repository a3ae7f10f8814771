package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"memento/chunk"
)

// FormatVersion is the repository format this binary writes. A binary reads
// every version up to its own and refuses newer ones with ErrFormat.
// Format 2 (2026-12) adds compressed index files (metadata envelope
// version 2, file.go); everything else is as in format 1, and a format-1
// repository is still written in format 1 (no compressed index files), so
// the binaries that made it keep reading it.
// Format 3 (2026-12) adds the encryption xaes-256-gcm, the default of new
// repositories, and the stored chunk form 0x03 (float planes Huffman-coded,
// docs/chunking.md); a repository of format 1 or 2 keeps XChaCha20-Poly1305,
// form 0x02 and its version, so nothing it holds changes and the binaries
// that made it keep reading everything written to it later.
// Format 4 (2026-12) adds the stored chunk form 0x04 for WAL chunks (each
// record's embedding shuffled at its own float phase, docs/chunking.md) and
// delta blobs (FlagDelta, docs/repository-format.md "Delta blobs"): a data
// chunk stored as its base chunk's ID and the 4 KiB pages that differ from
// it. Only repositories created at format 4 get them; a repository of
// format 3 or older keeps its version and is written exactly as before.
// Format 5 (2026-12) adds the state digest version 2 (EngramInfo's
// StateDigestKind "lthash16", docs/engram-format.md "State digest"), which a
// backup maintains as it replays the WAL and carries across backups. Only
// repositories created at format 5 record it; a repository of format 4 or
// older keeps recording version-1 digests, exactly as before.
// Format 6 (2026-12) adds grouped small files (FlagMember,
// docs/repository-format.md "Grouped small files"): small files of a
// backup compressed together as one group blob, each file's chunk a member
// blob naming its slice of the group. Only repositories created at format 6
// get them; a repository of format 5 or older is written exactly as before.
const FormatVersion = 6

// OldestInitFormat is the oldest format Init creates (InitOptions.Format):
// a repository older binaries open, for a fleet that still runs them (a
// replica or restore host, an off-site copy read during a drill). A
// repository of format N made by this binary holds only what a binary of
// format N reads: every feature added since is gated by the config's
// version (Config.GroupedFiles, StateDigestKind, DeltaBlobs, WALRecords,
// HuffPlanes, the XAES-256-GCM cipher, compressed index files), and the
// structures versioned apart from the repository that this binary still
// writes into any format (tree format 2, manifest version 2, chunk
// parameter set 3) all came before format 2, so every binary of format 2
// or later reads them. Format 1 is not offered: its binaries span those
// changes (one made before parameter set 3 refuses a config naming it),
// so "format 1" names no set of binaries a new repository would suit.
const OldestInitFormat = 2

// CipherFormat is the oldest repository format whose config may name the
// encryption c (one of Ciphers, or EncryptionNone).
func CipherFormat(c string) int {
	if c == EncryptionXAES {
		return formatXAES
	}
	return 1
}

// formatGroupedFiles is the first format whose small files may be stored
// as members of a group blob (FlagMember).
const formatGroupedFiles = 6

// GroupedFiles reports whether small files of this repository may be
// stored as members of group blobs, which binaries before format 6 cannot
// read.
func (c Config) GroupedFiles() bool { return c.Version >= formatGroupedFiles }

// formatStateDigestV2 is the first format whose snapshots record the state
// digest version 2.
const formatStateDigestV2 = 5

// StateDigestKind is the kind of state digest backups of this repository
// record (EngramInfo.StateDigestKind): "lthash16" from format 5, else ""
// (version 1), which binaries before format 5 verify.
func (c Config) StateDigestKind() string {
	if c.Version >= formatStateDigestV2 {
		return StateDigestLtHash
	}
	return ""
}

// StateDigestLtHash is the StateDigestKind of the state digest version 2
// (walreplay.DigestKindLtHash).
const StateDigestLtHash = "lthash16"

// formatXAES is the first format whose config may name EncryptionXAES.
const formatXAES = 3

// formatHuffPlanes is the first format whose chunks may be stored in form
// 0x03 (chunk.Pipeline.UseHuffPlanes).
const formatHuffPlanes = 3

// formatDeltaBlobs is the first format whose data chunks may be stored as
// deltas of another chunk (FlagDelta).
const formatDeltaBlobs = 4

// DeltaBlobs reports whether data chunks of this repository may be stored
// as delta blobs, which binaries before format 4 cannot read.
func (c Config) DeltaBlobs() bool { return c.Version >= formatDeltaBlobs }

// HuffPlanes reports whether chunks of this repository may be stored in form
// 0x03, which binaries before format 3 cannot decode.
func (c Config) HuffPlanes() bool { return c.Version >= formatHuffPlanes }

// formatWALRecords is the first format whose WAL chunks may be stored in
// form 0x04 (chunk.Pipeline.UseWALRecords).
const formatWALRecords = 4

// WALRecords reports whether WAL chunks of this repository may be stored in
// form 0x04, which binaries before format 4 cannot decode.
func (c Config) WALRecords() bool { return c.Version >= formatWALRecords }

// Encryption modes recorded in the config.
const (
	EncryptionXChaCha = "xchacha20-poly1305"
	EncryptionXAES    = "xaes-256-gcm"
	EncryptionNone    = "none"
)

// DefaultEncryption is what init picks: XAES-256-GCM, about twice as fast
// as XChaCha20-Poly1305 on CPUs with AES and carry-less multiplication
// instructions (docs/repository-format.md, section 5). A repository of
// format 2 (InitOptions.Format) gets XChaCha20-Poly1305, the cipher of
// its binaries (DefaultEncryptionOf).
const DefaultEncryption = EncryptionXAES

// DefaultEncryptionOf is the encryption init picks for a new encrypted
// repository of the given format.
func DefaultEncryptionOf(format int) string {
	if format < CipherFormat(DefaultEncryption) {
		return EncryptionXChaCha
	}
	return DefaultEncryption
}

// Ciphers are the encryptions init accepts for an encrypted repository,
// the default first.
func Ciphers() []string { return []string{EncryptionXAES, EncryptionXChaCha} }

// Config is the only file not named by its hash: it is written once by init and
// tells a binary what it is looking at before any key is known. It is
// authenticated indirectly: its signing public key must match the one derived
// from the master secret.
type Config struct {
	Version       int       `json:"version"`
	ID            string    `json:"id"`
	Created       time.Time `json:"created"`
	Encryption    string    `json:"encryption"`
	PackSize      int64     `json:"pack_size"`
	SignPublicKey []byte    `json:"sign_public_key"`
	// ChunkParams is the chunk.ParamSet every backup into this repository
	// uses, so that a newer binary cuts the same chunks and keeps deduplicating
	// against old snapshots. Absent (0) in repositories created before sets
	// existed: those use set 1.
	ChunkParams chunk.ParamSet `json:"chunk_params,omitempty"`
}

// ParamSet is the chunk parameter set backups into this repository use.
func (c Config) ParamSet() chunk.ParamSet {
	if c.ChunkParams == 0 {
		return chunk.ParamSet1
	}
	return c.ChunkParams
}

const ConfigName = "config"

func loadConfig(ctx context.Context, be Backend) (Config, error) {
	var cfg Config
	rc, err := be.Open(ctx, ConfigName, 0, -1)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cfg, fmt.Errorf("%w at %s (no config file): create one with 'memento init'", ErrNoRepository, be.Location())
		}
		return cfg, fmt.Errorf("repository %s: read config: %w", be.Location(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return cfg, fmt.Errorf("repository %s: read config: %w", be.Location(), err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, Corruptf("config", "not valid JSON: %v", err)
	}
	if cfg.Version < 1 || cfg.Version > FormatVersion {
		return cfg, fmt.Errorf("%w: repository format version %d (this binary reads 1..%d); upgrade memento", ErrFormat, cfg.Version, FormatVersion)
	}
	switch cfg.Encryption {
	case EncryptionXChaCha, EncryptionNone:
	case EncryptionXAES:
		if cfg.Version < formatXAES {
			return cfg, Corruptf("config", "encryption %q in a repository of format %d (it needs format %d)", cfg.Encryption, cfg.Version, formatXAES)
		}
	default:
		return cfg, Corruptf("config", "unknown encryption %q", cfg.Encryption)
	}
	if err := cfg.ParamSet().Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v; upgrade memento", ErrFormat, err)
	}
	if cfg.PackSize <= 0 || cfg.PackSize > 1<<30 {
		return cfg, Corruptf("config", "pack size %d out of range", cfg.PackSize)
	}
	return cfg, nil
}
