package local

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrInvalidName is wrapped by every error about a file name that could
// escape the repository or is otherwise not a plain relative name.
var ErrInvalidName = errors.New("invalid file name")

// tmpPrefix starts the name of every temporary file; List skips such files
// and ValidateName refuses them, so no caller can see or clobber one.
const tmpPrefix = ".tmp-"

// ValidateName checks that name is a slash-separated path relative to the
// repository root that stays inside it: not empty, not absolute, no "." or
// ".." or empty components, no backslash, no control characters, and no
// component that looks like one of our temporary files. The checks are
// stricter than the filesystem needs because names come from repository
// files that an attacker may have crafted.
func ValidateName(name string) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("local backend: %w %q: %s", ErrInvalidName, name, reason)
	}
	return nil
}

func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case strings.HasPrefix(name, "/"):
		return "absolute path"
	case strings.Contains(name, `\`):
		return "contains a backslash"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "contains a control character"
		}
	}
	for _, c := range strings.Split(name, "/") {
		switch {
		case c == "":
			return "empty path component"
		case c == "." || c == "..":
			return fmt.Sprintf("%q component", c)
		case strings.HasPrefix(c, tmpPrefix):
			return "reserved temporary-file prefix " + tmpPrefix
		}
	}
	// Catches what is special only on some platforms (drive letters, NUL, COM1...).
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return "not a local path on this platform"
	}
	return ""
}
