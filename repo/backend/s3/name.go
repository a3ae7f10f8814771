package s3

import (
	"fmt"

	"memento/repo/backend/names"
)

// ErrInvalidName is wrapped by every error about a file name that is not a
// plain relative repository name.
var ErrInvalidName = names.ErrInvalid

// ValidateName checks a name against the rules every backend shares
// (names.Problem): an object store would accept more, but then a replica
// could not always move to a directory. Keys are also bounded in length.
func ValidateName(name string) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("s3 backend: %w %q: %s", ErrInvalidName, name, reason)
	}
	return nil
}

func nameProblem(name string) string {
	if len(name) > 900 {
		return "longer than 900 bytes"
	}
	return names.Problem(name)
}
