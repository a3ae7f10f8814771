package directio

import (
	"fmt"
	"os"
)

// SyncPath fsyncs the file or directory p (for a directory: the names
// created, renamed or removed in it), so that what was written there
// survives a power cut. The error names p.
func SyncPath(p string) error {
	f, err := os.Open(p)
	if err == nil {
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("sync %s to disk: %w", p, err)
	}
	return nil
}
