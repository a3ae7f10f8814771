//go:build study

package chunk

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// storedShape describes a stored form: its format and, for shuffled forms,
// each plane's section kind and body size.
func storedShape(out []byte, ok bool) (string, [4]byte, [4]int) {
	var kinds [4]byte
	var sizes [4]int
	if !ok {
		return "raw", kinds, sizes
	}
	if out[0] == formatZstd {
		return "zstd", kinds, sizes
	}
	_, n := binary.Uvarint(out[1:])
	src := out[1+n:]
	for k := range 4 {
		kinds[k] = src[0]
		l, m := binary.Uvarint(src[1:])
		sizes[k] = int(l)
		src = src[1+m+int(l):]
	}
	return fmt.Sprintf("shuf%x", out[0]), kinds, sizes
}

type shapeAcc struct {
	chunks, in, stored int
}

func shapeReport(m map[string]*shapeAcc) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		a := m[k]
		fmt.Fprintf(&b, "  %-24s chunks %6d in %11d stored %11d (%.4f)\n", k, a.chunks, a.in, a.stored, float64(a.stored)/float64(a.in))
	}
	return b.String()
}
