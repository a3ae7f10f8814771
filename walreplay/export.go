package walreplay

import (
	"bufio"
	"io"
	"math"
	"strconv"
)

// ExportJSONL writes the state as JSON lines, one memory a line, sorted by
// id: {"id":...,"confidence":...,"content":...,"embedding":[...]}. Floats
// use the shortest representation that reads back as the same float32;
// non-finite values (which JSON cannot express) are written as null. The
// output is deterministic, so two exports of equal states are equal bytes.
func (s *State) ExportJSONL(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	var line []byte
	err := s.Each(func(id string, p []byte) error {
		line = appendRecordJSON(line[:0], p)
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// appendRecordJSON renders one validated record payload as a JSON line.
func appendRecordJSON(b, p []byte) []byte {
	n := int(le.Uint16(p))
	id := p[2 : 2+n]
	p = p[2+n:]
	conf := math.Float32frombits(le.Uint32(p))
	dim := int(le.Uint16(p[4:]))
	emb := p[6 : 6+4*dim]
	content := p[6+4*dim+4:]

	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"confidence":`...)
	b = appendJSONFloat(b, conf)
	b = append(b, `,"content":`...)
	b = appendJSONString(b, content)
	b = append(b, `,"embedding":[`...)
	for i := 0; i < dim; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONFloat(b, math.Float32frombits(le.Uint32(emb[4*i:])))
	}
	return append(b, "]}\n"...)
}

func appendJSONFloat(b []byte, f float32) []byte {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
}

// appendJSONString quotes valid UTF-8 s as a JSON string (RFC 8259):
// only '"', '\\' and control characters need escaping.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
