//go:build !windows

package local

// maxOpenHandles is how many pack files stay open between reads.
const maxOpenHandles = 64
