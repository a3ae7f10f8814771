package engram

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"
)

// The files memento keeps in a data dir, in DIR/.memento/ (a hidden
// directory at the root, beside metadata.json and spaces/, so Engram's own
// listing of spaces is untouched; docs/engram-format.md):
//
//	DIR/.memento/identity.json    {"version":1,"identity":"<32 hex>","created":...,"host":...,"data_dir":...}
//	DIR/.memento/timelines.json   {"version":1,"spaces":{"<space>":{"timeline":N}}}
const (
	MementoDirName = ".memento"
	IdentityName   = "identity.json"
	TimelinesName  = "timelines.json"
)

// IdentityVersion and TimelinesVersion are the only versions of the two files.
const (
	IdentityVersion  = 1
	TimelinesVersion = 1
)

// Identity is DIR/.memento/identity.json: the database's stable identity,
// 128 random bits created once (by the first memento command that backs up
// or archives the data dir) and kept with the data dir (a restore keeps it).
// Host and DataDir say where it was created, for an operator choosing between
// databases; they are not part of the identity.
type Identity struct {
	Version  int       `json:"version"`
	Identity string    `json:"identity"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host"`
	DataDir  string    `json:"data_dir"`
}

var identityRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ValidIdentity reports whether id is an identity: 32 lowercase hex digits.
func ValidIdentity(id string) error {
	if !identityRe.MatchString(id) {
		return fmt.Errorf("identity %q: must be 32 lowercase hex digits", id)
	}
	return nil
}

// IdentityPath is DIR/.memento/identity.json.
func IdentityPath(dataDir string) string {
	return filepath.Join(dataDir, MementoDirName, IdentityName)
}

// TimelinesPath is DIR/.memento/timelines.json.
func TimelinesPath(dataDir string) string {
	return filepath.Join(dataDir, MementoDirName, TimelinesName)
}

// strictDecode decodes one JSON object into v, refusing unknown fields and
// trailing data.
func strictDecode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(b[d.InputOffset():])) != 0 {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// ParseIdentity decodes and validates identity.json: version 1, a valid
// identity, no unknown field. The error does not name the file.
func ParseIdentity(b []byte) (*Identity, error) {
	var id Identity
	if err := strictDecode(b, &id); err != nil {
		return nil, err
	}
	if id.Version != IdentityVersion {
		return nil, fmt.Errorf("version %d, want %d", id.Version, IdentityVersion)
	}
	if err := ValidIdentity(id.Identity); err != nil {
		return nil, err
	}
	return &id, nil
}

// EncodeIdentity is the content of identity.json: JSON indented by two
// spaces, ending in a newline.
func EncodeIdentity(id *Identity) []byte {
	b, _ := json.MarshalIndent(id, "", "  ") // cannot fail
	return append(b, '\n')
}

// NewIdentity returns a fresh identity (128 random bits) for the data dir.
func NewIdentity(dataDir string) (*Identity, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return &Identity{Version: IdentityVersion, Identity: hex.EncodeToString(b[:]),
		Created: time.Now().UTC().Truncate(time.Second), Host: host, DataDir: abs}, nil
}

// ReadIdentity reads DIR/.memento/identity.json; errors name the file. A
// missing file is reported wrapping ErrNoIdentity and fs.ErrNotExist.
func ReadIdentity(dataDir string) (*Identity, error) {
	p := IdentityPath(dataDir)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist (create it with 'memento identity init --data-dir %s'): %w", ErrNoIdentity, p, dataDir, err)
		}
		return nil, err
	}
	id, err := ParseIdentity(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return id, nil
}

// EnsureIdentity returns the data dir's identity, creating it (atomically:
// temporary file, fsync, rename, directory fsync) when the data dir has
// none. created says whether it did. Two processes creating it at once both
// end with the same file: the loser of the rename race reads the winner's.
func EnsureIdentity(dataDir string) (id *Identity, created bool, err error) {
	id, err = ReadIdentity(dataDir)
	if err == nil || !errors.Is(err, ErrNoIdentity) {
		return id, false, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, MetadataName)); err != nil {
		if _, err2 := os.Stat(filepath.Join(dataDir, SpacesName)); err2 != nil {
			return nil, false, fmt.Errorf("%s is not an Engram data dir: %w", dataDir, err)
		}
	}
	if id, err = NewIdentity(dataDir); err != nil {
		return nil, false, err
	}
	if err := WriteIdentity(dataDir, id, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			id, err = ReadIdentity(dataDir)
			return id, false, err
		}
		return nil, false, err
	}
	return id, true, nil
}

// WriteIdentity writes DIR/.memento/identity.json atomically. Unless
// replace, an existing file is left alone and fs.ErrExist returned.
func WriteIdentity(dataDir string, id *Identity, replace bool) error {
	if err := ValidIdentity(id.Identity); err != nil {
		return err
	}
	return writeMementoFile(dataDir, IdentityName, EncodeIdentity(id), replace)
}

// writeMementoFile writes DIR/.memento/name atomically and durably: a
// temporary file, fsync, rename (or link, when !replace, so an existing
// file wins), fsync of the directory (and of DIR when .memento is new).
func writeMementoFile(dataDir, name string, b []byte, replace bool) error {
	dir := filepath.Join(dataDir, MementoDirName)
	newDir := false
	if err := os.Mkdir(dir, 0o755); err == nil {
		newDir = true
	} else if !errors.Is(err, fs.ErrExist) {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	if replace {
		err = os.Rename(tmp, final)
	} else {
		err = os.Link(tmp, final)
	}
	if err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if newDir {
		return syncDir(dataDir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Timelines is DIR/.memento/timelines.json: the timeline each space of the
// data dir is on (docs/pitr.md, "Timelines"). A space not listed, or a data
// dir without the file, is on timeline 1.
type Timelines struct {
	Version int                      `json:"version"`
	Spaces  map[string]SpaceTimeline `json:"spaces"`
}

// SpaceTimeline is one space's entry in timelines.json.
type SpaceTimeline struct {
	Timeline uint32 `json:"timeline"`
	// Fork, when set, says a restore put the space at an earlier point of
	// Timeline than its archive reaches: the first memento command that
	// archives or backs up the space records a new timeline forked there
	// (in the repository) and replaces this entry with that timeline.
	Fork *PendingFork `json:"fork,omitempty"`
}

// PendingFork is where a restore left a space that has not been archived
// since: entry Seq (timestamp TS) of the entry's Timeline, recovered from
// Snapshot for Target ("at T", "to-seq N").
type PendingFork struct {
	Seq      uint64 `json:"seq"`
	TS       int64  `json:"ts"`
	Snapshot string `json:"snapshot,omitempty"`
	Target   string `json:"target,omitempty"`
	Time     string `json:"time,omitempty"` // RFC 3339, when the restore ran
}

// Of returns the timeline of space (1 when not listed).
func (t *Timelines) Of(space string) uint32 {
	if t == nil {
		return 1
	}
	if s, ok := t.Spaces[space]; ok {
		return s.Timeline
	}
	return 1
}

// Set records that space is on timeline n (no pending fork).
func (t *Timelines) Set(space string, n uint32) {
	if t.Spaces == nil {
		t.Spaces = map[string]SpaceTimeline{}
	}
	t.Spaces[space] = SpaceTimeline{Timeline: n}
}

// SetFork records that a restore put space at f on timeline n.
func (t *Timelines) SetFork(space string, n uint32, f *PendingFork) {
	if t.Spaces == nil {
		t.Spaces = map[string]SpaceTimeline{}
	}
	t.Spaces[space] = SpaceTimeline{Timeline: n, Fork: f}
}

// Fork returns the pending fork of space, or nil.
func (t *Timelines) Fork(space string) *PendingFork {
	if t == nil {
		return nil
	}
	return t.Spaces[space].Fork
}

// ParseTimelines decodes and validates timelines.json: version 1, valid
// space ids, timelines >= 1, no unknown field. The error does not name the
// file.
func ParseTimelines(b []byte) (*Timelines, error) {
	var t Timelines
	if err := strictDecode(b, &t); err != nil {
		return nil, err
	}
	if t.Version != TimelinesVersion {
		return nil, fmt.Errorf("version %d, want %d", t.Version, TimelinesVersion)
	}
	for s, v := range t.Spaces {
		if err := ValidSpaceID(s); err != nil {
			return nil, err
		}
		if v.Timeline < 1 {
			return nil, fmt.Errorf("space %s: timeline %d (timelines start at 1)", s, v.Timeline)
		}
		if v.Fork != nil && v.Fork.Seq < 1 {
			return nil, fmt.Errorf("space %s: fork at sequence 0", s)
		}
	}
	if t.Spaces == nil {
		t.Spaces = map[string]SpaceTimeline{}
	}
	return &t, nil
}

// EncodeTimelines is the content of timelines.json: JSON indented by two
// spaces (spaces sorted), ending in a newline.
func EncodeTimelines(t *Timelines) []byte {
	c := Timelines{Version: TimelinesVersion, Spaces: t.Spaces}
	if c.Spaces == nil {
		c.Spaces = map[string]SpaceTimeline{}
	}
	b, _ := json.MarshalIndent(c, "", "  ") // map keys are sorted
	return append(b, '\n')
}

// ReadTimelines reads DIR/.memento/timelines.json; a missing file is an
// empty set (every space on timeline 1). Errors name the file.
func ReadTimelines(dataDir string) (*Timelines, error) {
	p := TimelinesPath(dataDir)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &Timelines{Version: TimelinesVersion, Spaces: map[string]SpaceTimeline{}}, nil
	}
	if err != nil {
		return nil, err
	}
	t, err := ParseTimelines(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return t, nil
}

// WriteTimelines replaces DIR/.memento/timelines.json atomically.
func WriteTimelines(dataDir string, t *Timelines) error {
	return writeMementoFile(dataDir, TimelinesName, EncodeTimelines(t), true)
}

// SpacesOf returns the spaces listed in t, sorted.
func (t *Timelines) SpacesOf() []string {
	var out []string
	for s := range t.Spaces {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
