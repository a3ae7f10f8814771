package fusefs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// setKernelReadahead sets how far the kernel reads ahead in the mount at abs
// (Options.KernelReadahead): every FUSE mount has its own backing device,
// /sys/class/bdi/<major>:<minor>, whose read_ahead_kb starts at 128 KiB
// whatever the server says at INIT (go-fuse can lower the kernel's
// max_readahead there, never raise it).
func setKernelReadahead(abs string, bytes int64) error {
	dev, err := mountDevice(abs)
	if err != nil {
		return err
	}
	p := "/sys/class/bdi/" + dev + "/read_ahead_kb"
	if err := os.WriteFile(p, []byte(strconv.FormatInt(max(bytes>>10, 4), 10)), 0); err != nil {
		return fmt.Errorf("set %s: %w", p, err)
	}
	return nil
}

// mountDevice returns the major:minor of the filesystem mounted at abs,
// from /proc/self/mountinfo (the last mount on a path is the visible one).
func mountDevice(abs string) (string, error) {
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	dev := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ...
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && unescapeMountinfo(fields[4]) == abs {
			dev = fields[2]
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if dev == "" {
		return "", fmt.Errorf("%s is not in /proc/self/mountinfo", abs)
	}
	return dev, nil
}
