//go:build study

package chunk

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// x86Filter is the study's x86 branch filter (no stored form uses it):
// the 32-bit operand of an E8/E9 byte (call/jmp rel32) whose high byte is
// 0x00 or 0xFF carries 25 bits; encode adds the operand's end offset in buf
// to them and decode subtracts it, modulo 2^25, so the high byte stays 0x00
// or 0xFF. After any E8/E9 the scan moves 5 bytes on, converted or not, so
// no conversion touches a byte an earlier decision read, and decode makes
// the decisions encode made. It returns the operands converted.
func x86Filter(buf []byte, encode bool) int {
	n := 0
	for i := 0; i+5 <= len(buf); {
		op := buf[i]
		if op != 0xE8 && op != 0xE9 {
			i++
			continue
		}
		hb := buf[i+4]
		if hb != 0x00 && hb != 0xFF {
			i += 5
			continue
		}
		v := uint32(buf[i+1]) | uint32(buf[i+2])<<8 | uint32(buf[i+3])<<16 | uint32(hb)<<24
		x := v & 0x1FFFFFF
		off := uint32(i + 5)
		if encode {
			x = (x + off) & 0x1FFFFFF
		} else {
			x = (x - off) & 0x1FFFFFF
		}
		if x&0x1000000 != 0 {
			x |= 0xFE000000
		}
		buf[i+1], buf[i+2], buf[i+3], buf[i+4] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		i += 5
		n++
	}
	return n
}

func TestBCJStudy(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" {
		t.Skip("CHUNK_STUDY_DIR not set")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mk := func(l zstd.EncoderLevel) *zstd.Encoder {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithLowerEncoderMem(true))
		return e
	}
	def, fast := mk(zstd.SpeedDefault), mk(zstd.SpeedFastest)
	dec, _ := zstd.NewReader(nil)
	names := []string{"current", "fastest", "bcj+fastest", "bcj+default", "best-of(cur,bcj+fast)"}
	sz := make([]int, len(names))
	cpu := make([]time.Duration, len(names))
	in := 0
	tsv, _ := os.Create(os.Getenv("BCJ_TSV"))
	defer tsv.Close()
	var tmp, out []byte
	err := studyChunks(root, func(k fileKind) bool { return k == kindDefault }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			in += len(raw)
			t0 := threadCPU()
			o, _ := compressKind(out[:0], raw, level, kind, 0, nil)
			cur := len(o)
			cpu[0] += threadCPU() - t0
			sz[0] += cur
			if cur == len(raw) || len(raw) < minCompressSize {
				for i := 1; i < len(names); i++ {
					sz[i] += cur
				}
				return nil
			}
			t0 = threadCPU()
			f := fast.EncodeAll(raw, out[:0])
			cpu[1] += threadCPU() - t0
			sz[1] += min(len(f), len(raw))
			t0 = threadCPU()
			tmp = append(tmp[:0], raw...)
			conv := x86Filter(tmp, true)
			bf := fast.EncodeAll(tmp, out[:0])
			cpu[2] += threadCPU() - t0
			sz[2] += min(len(bf), len(raw))
			t0 = threadCPU()
			bd := def.EncodeAll(tmp, out[:0])
			cpu[3] += threadCPU() - t0
			sz[3] += min(len(bd), len(raw))
			sz[4] += min(cur, len(bf))
			fmt.Fprintf(tsv, "%d\t%d\t%d\t%d\t%d\t%d\t%s\n", len(raw), conv, cur, min(len(f), len(raw)), min(len(bf), len(raw)), min(len(bd), len(raw)), rel)
			// round trip
			d, err := dec.DecodeAll(bf, nil)
			if err != nil {
				return err
			}
			x86Filter(d, false)
			if !bytes.Equal(d, raw) {
				t.Fatalf("%s: round trip differs", rel)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("in %d MB", in/1e6)
	for i, n := range names {
		t.Logf("%-22s %8.1f MB  %6.2f s", n, float64(sz[i])/1e6, cpu[i].Seconds())
	}
}

// TestFloatJudgedStudy lists every chunk of $CHUNK_STUDY_DIR the probe
// judges float32: its plane entropies, the sample's choice, what the
// current path stores and what one plain frame at the same level stores.
func TestFloatJudgedStudy(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" {
		t.Skip("CHUNK_STUDY_DIR not set")
	}
	tsv, _ := os.Create(os.Getenv("FLOAT_TSV"))
	defer tsv.Close()
	var dst []byte
	err := studyChunks(root, func(k fileKind) bool { return k == kindDefault }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			st := sampleStats(raw)
			if !st.ok || !looksLikeFloat32(st.ent) {
				return nil
			}
			choice := shuffledSampleChoice(raw, level, st.ent, false)
			l, _ := level.resolve()
			c := encoder(l).EncodeAll(raw, dst[:0])
			plain := min(len(c)+1, len(raw))
			out, _ := compressKind(c[:0], raw, level, kind, 0, nil)
			fmt.Fprintf(tsv, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\n", rel, len(raw), st.ent[0], st.ent[1], st.ent[2], st.ent[3], choice, len(out), plain)
			dst = out
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
}
