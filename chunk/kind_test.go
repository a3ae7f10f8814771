package chunk

import (
	"bytes"
	"testing"
)

// TestCompressFileWALPlain: a WAL segment's chunks are compressed plain
// (format 0x01) at the fastest level without the float probes, also those
// whose sample looks like float32, and never larger than Compress, which
// probes them, stores them; they decode to the chunk.
func TestCompressFileWALPlain(t *testing.T) {
	floatLooking := 0
	for seed := uint64(1); seed <= 6; seed++ {
		d := genWAL(1<<20+int(seed)*777, seed)[seed:]
		if e, ok := planeEntropy(d); ok && looksLikeFloat32(e) {
			floatLooking++
		}
		got, ok := CompressFile(nil, d, "spaces/a/wal/wal-0000000000000001.log", LevelDefault)
		if !ok || got[0] != formatZstd {
			t.Fatalf("seed %d: compressed %v, format byte %#x, want 0x01", seed, ok, got[0])
		}
		want := encoder(LevelFastest).EncodeAll(d, []byte{formatZstd})
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: %d bytes, want plain zstd fastest (%d bytes)", seed, len(got), len(want))
		}
		auto, _ := Compress(nil, d, LevelDefault)
		if len(got) > len(auto) {
			t.Errorf("seed %d: WAL strategy %d bytes, Compress %d", seed, len(got), len(auto))
		}
		back, err := Decompress(nil, got)
		if err != nil || !bytes.Equal(back, d) {
			t.Fatalf("seed %d: round trip: %v", seed, err)
		}
	}
	if floatLooking == 0 {
		t.Fatal("no WAL chunk looks like float32 at its sampled phase: the test does not exercise the float probes")
	}
	// Random bytes in a WAL segment are still stored raw after the probe.
	if _, ok := CompressFile(nil, genRandom(1<<20, 5), "wal/wal-01.log", LevelDefault); ok {
		t.Error("random WAL chunk compressed")
	}
	// Even float32 data in a WAL segment is compressed plain: the strategy
	// is the file kind's, not the chunk's (Compress shuffles it).
	f := genFloats(1<<20, 3)
	if got, ok := CompressFile(nil, f, "wal/wal-01.log", LevelDefault); !ok || got[0] != formatZstd {
		t.Errorf("floats in a WAL segment: compressed %v, format %#x, want plain", ok, got[0])
	}
	// Other kinds keep Compress's strategy (at FileLevel's level).
	for _, rel := range []string{"cold/seg-000001.col", "warm/warm_tier.dat"} {
		got, _ := CompressFile(nil, f, rel, LevelDefault)
		want, _ := Compress(nil, f, LevelDefault)
		if !bytes.Equal(got, want) || got[0] != formatZstdShuffle4 {
			t.Errorf("%s: floats stored as %d bytes format %#x, want Compress's %d bytes", rel, len(got), got[0], len(want))
		}
	}
}

// TestSplitFileWALStrategy: the pipeline stores a WAL segment's chunk as
// CompressFile does.
func TestSplitFileWALStrategy(t *testing.T) {
	d := genWAL(int(ParamsWAL.Max), 2)
	p := NewPipeline(2, LevelDefault)
	defer p.Close()
	got := splitStored(t, p, d, "wal/wal-01.log", ParamsWAL)
	want, _ := CompressFile(nil, d, "wal/wal-01.log", LevelDefault)
	if !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes, want CompressFile's %d", len(got), len(want))
	}
}

// TestSampleStatsText: where sampleStats decides text-ness (chunks whose
// entropy sample is looksLikeText's), it agrees with looksLikeText.
func TestSampleStatsText(t *testing.T) {
	decided := map[int8]int{}
	type spray struct {
		c     byte
		every int
	}
	kinds := append(dataKinds, dataKind{"binary", func(n int, _ uint64) []byte { return genBinary(n) }})
	for _, k := range kinds {
		sprays := []spray{{}}
		if k.name == "text" {
			// Form feeds (text), and control bytes just under and just
			// over maxTextControlPermille.
			sprays = append(sprays, spray{'\f', 40}, spray{0x7f, 95}, spray{0x7f, 105}, spray{0x1f, 95}, spray{0x1f, 105}, spray{0x00, 95})
		}
		for _, n := range []int{100, 4095, 4096, 4099, 32 << 10, 200_001, 16*probeWindow - 1, 16 * probeWindow, 1 << 20} {
			base := k.gen(n+3, uint64(n))
			for _, sp := range sprays {
				for shift := range 4 {
					d := bytes.Clone(base[shift : n+shift])
					for i := 0; sp.every > 0 && i < len(d); i += sp.every {
						d[i] = sp.c
					}
					st := sampleStats(d)
					decided[st.text]++
					if st.text == textUnknown {
						continue
					}
					if want := looksLikeText(d); (st.text == textYes) != want {
						t.Errorf("%s (%#x every %d) %d bytes shift %d: sampleStats text %v, looksLikeText %v", k.name, sp.c, sp.every, n, shift, st.text == textYes, want)
					}
				}
			}
		}
	}
	if decided[textYes] == 0 || decided[textNo] == 0 || decided[textUnknown] == 0 {
		t.Errorf("decisions %v: want some of each", decided)
	}
}

// TestPipelineHuffPlanes: a pipeline stores float chunks in form 0x02 (which
// every binary reads) until UseHuffPlanes, then in form 0x03; both decode to
// the chunk. Repositories before format 3 must never get 0x03.
func TestPipelineHuffPlanes(t *testing.T) {
	f := genFloats(1<<20, 3)
	p := NewPipeline(2, LevelDefault)
	defer p.Close()
	for _, c := range []struct {
		huff   bool
		format byte
	}{{false, formatZstdShuffle4}, {true, formatShuffle4Huff}, {false, formatZstdShuffle4}} {
		p.UseHuffPlanes(c.huff)
		got := splitStored(t, p, f, "cold/seg-000001.col", ParamsCold)
		if len(got) == 0 || got[0] != c.format {
			t.Fatalf("huff %v: stored form %#x, want %#x", c.huff, got[0], c.format)
		}
		if plain, err := Decompress(nil, got); err != nil || !bytes.Equal(plain, f) {
			t.Fatalf("huff %v: decompress: %v", c.huff, err)
		}
	}
}
