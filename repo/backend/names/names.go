// Package names holds the repository file-name rules that every backend
// enforces, so that a name valid on one backend is valid on all of them and a
// replica can always move between a directory and an object store.
package names

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error about a name that could escape the
// repository or is otherwise not a plain relative name.
var ErrInvalid = errors.New("invalid file name")

// TmpPrefix starts the name of every temporary file a backend makes; listings
// skip such files and no caller may name one.
const TmpPrefix = ".tmp-"

// Problem says why name is not a valid repository file name, or "" if it is:
// a slash-separated path relative to the repository root that stays inside
// it, with no "." or ".." or empty components, no backslash, no control
// characters, and no temporary-file component. The rules are stricter than
// filesystems need because names come from files an attacker may have crafted.
func Problem(name string) string {
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
		case strings.HasPrefix(c, TmpPrefix):
			return "reserved temporary-file prefix " + TmpPrefix
		}
	}
	return ""
}
