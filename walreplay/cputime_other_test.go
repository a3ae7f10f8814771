//go:build !unix

package walreplay

import "time"

func cpuTime() time.Duration { return 0 }
