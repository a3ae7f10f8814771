//go:build !unix

package walreplay

import (
	"errors"
	"os"
)

// Without mmap, zero-copy states fall back to copying.
func mmap(*os.File, int) ([]byte, error) { return nil, errors.New("mmap not supported") }

func munmap([]byte) {}

func dupFile(*os.File) *os.File { return nil }
