//go:build !linux

package repo

// kdfHugePages does nothing on systems without Linux's transparent huge
// pages (see kdf_mem_linux.go).
func kdfHugePages(int) (undo func()) { return func() {} }
