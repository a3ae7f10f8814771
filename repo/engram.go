package repo

import (
	"fmt"
	"regexp"
)

var spaceIDRe = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// ValidSpaceID checks an Engram space id ([a-z0-9_-]{1,64}). Space ids become
// directory names and key-derivation inputs, so anything else is refused.
func ValidSpaceID(id string) error {
	if !spaceIDRe.MatchString(id) {
		return fmt.Errorf("invalid space id %q: must match [a-z0-9_-]{1,64}", id)
	}
	return nil
}

// PathsSpace is the storage domain of snapshots of plain paths (Manifest.Space
// ""): packs, index buckets and chunk ID keys are per space, and this name can
// never collide with an Engram space id because it contains a '/'.
const PathsSpace = "/paths"

// StorageSpace maps a snapshot's space to its storage domain.
func StorageSpace(space string) string {
	if space == "" {
		return PathsSpace
	}
	return space
}
