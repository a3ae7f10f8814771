//go:build unix

package walreplay

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time. Benchmarks report work per
// CPU-second next to per wall-second, because a shared machine's wall-clock
// rates say more about the neighbours than about the code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
