package replicate

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseByteRate reads a rate such as "10MiB", "10M", "500KiB/s", "1.5GB" or
// "1048576" into bytes per second. K, M, G alone are binary (as in rsync);
// KB, MB, GB are decimal; KiB, MiB, GiB binary. "" and "0" mean no limit.
func ParseByteRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "ps")
	if t == "" || t == "0" {
		return 0, nil
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a rate such as 10MiB", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KiB, MiB, GiB, KB, MB, GB)", s, t[i:])
	}
	r := v * mult
	if r < 1 || r > 1<<50 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return int64(r), nil
}
