//go:build !linux

package repo

import "os"

// prefetch does nothing where the kernel takes no readahead hint.
func prefetch(*os.File) {}
