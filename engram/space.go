package engram

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// SpaceIDPattern is the syntax of a space id.
const SpaceIDPattern = "[a-z0-9_-]{1,64}"

var spaceIDRe = regexp.MustCompile(`^` + SpaceIDPattern + `$`)

// ValidSpaceID checks an Engram space id ([a-z0-9_-]{1,64}). Space ids become
// directory names and key-derivation inputs, so anything else is refused.
func ValidSpaceID(id string) error {
	if !spaceIDRe.MatchString(id) {
		return fmt.Errorf("invalid space id %q: must match [a-z0-9_-]{1,64}", id)
	}
	return nil
}

// NoSpacesError is ListSpaces' error for a data dir without spaces. It wraps
// ErrNoSpaces.
type NoSpacesError struct {
	DataDir string
	Reason  string // "no spaces/ directory (is this an Engram data dir?)" or "no spaces"
}

func (e *NoSpacesError) Error() string { return "data dir " + e.DataDir + ": " + e.Reason }
func (e *NoSpacesError) Unwrap() error { return ErrNoSpaces }

// Skipped is an entry of spaces/ that is not a space and was skipped on
// purpose: a file, or a restore's safety copy.
type Skipped struct {
	Path   string
	Reason string // SkippedNotDir or SkippedSafetyCopy
}

// Why an entry of spaces/ is not a space (Skipped.Reason).
const (
	SkippedNotDir     = "not a directory"
	SkippedSafetyCopy = "a restore's safety copy"
)

// SpaceList is what ListSpaces found in DIR/spaces.
type SpaceList struct {
	// Spaces are the space ids, in directory order (sorted by name).
	Spaces []string
	// Bad has an error naming each entry that looks like a space but cannot
	// be one (a bad name, a symlink to nothing or to a file): never skipped
	// silently, the caller reports them after handling the others.
	Bad []error
	// Skipped are the entries that are not spaces (files, a restore's
	// safety copies), for the caller to log.
	Skipped []Skipped
}

// ListSpaces returns the spaces found under DIR/spaces: its directories, and
// its symlinks to directories (a space kept on another disk). Hidden entries
// are ignored; files and a restore's safety copies (spaces/<id>.pre-restore-<time>)
// are listed in Skipped. The error is a *NoSpacesError for a data dir
// without spaces/ or without any space (and no bad entry), else the error of
// reading spaces/.
func ListSpaces(dataDir string) (*SpaceList, error) {
	dir := SpacesDir(dataDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NoSpacesError{DataDir: dataDir, Reason: "no spaces/ directory (is this an Engram data dir?)"}
		}
		return nil, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	l := &SpaceList{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.Name()[0] == '.' {
			continue
		}
		if e.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
				l.Bad = append(l.Bad, fmt.Errorf("space %s: %s is a symlink to %s, which is not a directory", e.Name(), p, target))
				continue
			}
		} else if !e.IsDir() {
			l.Skipped = append(l.Skipped, Skipped{Path: p, Reason: SkippedNotDir})
			continue
		}
		// A restore keeps the replaced space as spaces/<id>.pre-restore-<time>:
		// the operator's safety copy, not a space.
		if strings.Contains(e.Name(), ".pre-restore-") {
			l.Skipped = append(l.Skipped, Skipped{Path: p, Reason: SkippedSafetyCopy})
			continue
		}
		if err := ValidSpaceID(e.Name()); err != nil {
			l.Bad = append(l.Bad, fmt.Errorf("data dir %s: %w", dataDir, err))
			continue
		}
		l.Spaces = append(l.Spaces, e.Name())
	}
	if len(l.Spaces) == 0 && len(l.Bad) == 0 {
		return l, &NoSpacesError{DataDir: dataDir, Reason: "no spaces"}
	}
	return l, nil
}
