package repo

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
