package s3

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidName is wrapped by every error about a file name that is not a
// plain relative repository name.
var ErrInvalidName = errors.New("invalid file name")

// ValidateName checks that name is a slash-separated relative name: not
// empty, not absolute, no "." or ".." or empty components, no backslash, no
// control characters, and no ".tmp-" component. An object store would accept
// most of these, but the rules are the local backend's on purpose: every name
// valid here is valid there, so a replica can always move between the two.
func ValidateName(name string) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("s3 backend: %w %q: %s", ErrInvalidName, name, reason)
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
	case len(name) > 900:
		return "longer than 900 bytes"
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
		case strings.HasPrefix(c, ".tmp-"):
			return "reserved temporary-file prefix .tmp-"
		}
	}
	return ""
}
