package hugepage

import (
	"os"
	"strings"
)

// modeFile holds the kernel's transparent huge page mode, the selected one
// in brackets: "always [madvise] never".
const modeFile = "/sys/kernel/mm/transparent_hugepage/enabled"

// Mode returns the kernel's transparent huge page mode: "always" (every
// large enough anonymous range gets huge pages, advised or not), "madvise"
// (only ranges advised with MADV_HUGEPAGE do: the one mode in which
// preparing a range for Advise changes anything), "never", or "" when the
// kernel has none or the file cannot be read. It reads the file on every
// call (a few microseconds): the mode can be changed at run time.
func Mode() string {
	b, err := os.ReadFile(modeFile)
	if err != nil {
		return ""
	}
	return parseMode(string(b))
}

// parseMode returns the bracketed word of a transparent_hugepage/enabled
// line, or "" if there is none.
func parseMode(s string) string {
	for _, w := range strings.Fields(s) {
		if len(w) > 2 && w[0] == '[' && w[len(w)-1] == ']' {
			return w[1 : len(w)-1]
		}
	}
	return ""
}
