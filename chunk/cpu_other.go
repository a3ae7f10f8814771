//go:build !linux

package chunk

// currentCPU is 0 where getcpu(2) is not at hand: calls take the first
// free encoder slot.
func currentCPU() int { return 0 }
