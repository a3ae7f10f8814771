//go:build !linux

package local

import "testing"

// ringWrites: no ring outside Linux, nothing to require.
func ringWrites(*Backend) func(*testing.T) { return func(*testing.T) {} }
