package chunk

import (
	"syscall"
	"testing"
	"time"
)

// cpuMeter reports, besides the wall-clock MB/s of b.SetBytes, the MB per
// CPU-second the process spent (user+system, all goroutines): on a shared
// machine the wall figure swings with other people's load, the CPU figure
// much less. For a pipeline on 2 cores, wall MB/s can reach at most about
// 2 x cpu-MB/s.
type cpuMeter struct{ start time.Duration }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter { return cpuMeter{start: cpuTime()} }

// report adds the cpu-MB/s metric for bytes processed per iteration.
func (m cpuMeter) report(b *testing.B, bytesPerOp int64) {
	used := cpuTime() - m.start
	if used <= 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(bytesPerOp)*float64(b.N)/used.Seconds()/1e6, "cpu-MB/s")
}
