package local

import (
	"fmt"
	"path/filepath"

	"memento/repo/backend/names"
)

// ErrInvalidName is wrapped by every error about a file name that could
// escape the repository or is otherwise not a plain relative name.
var ErrInvalidName = names.ErrInvalid

// tmpPrefix starts the name of every temporary file; List skips such files
// and ValidateName refuses them, so no caller can see or clobber one.
const tmpPrefix = names.TmpPrefix

// ValidateName checks a name against the rules every backend shares
// (names.Problem) and against what is special on this platform only.
func ValidateName(name string) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("local backend: %w %q: %s", ErrInvalidName, name, reason)
	}
	return nil
}

func nameProblem(name string) string {
	if p := names.Problem(name); p != "" {
		return p
	}
	// Catches what is special only on some platforms (drive letters, NUL, COM1...).
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return "not a local path on this platform"
	}
	return ""
}
