package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo/backend/local"
)

// testSealers are the sealers of every encryption, keyed with key.
func testSealers(t testing.TB, key []byte) map[string]sealer {
	t.Helper()
	out := map[string]sealer{}
	for _, enc := range []string{EncryptionXAES, EncryptionXChaCha, EncryptionNone} {
		s, err := newDataSealer(enc, key)
		if err != nil {
			t.Fatal(err)
		}
		out[enc] = s
	}
	return out
}

// TestSealersRefuseTampering: for every sealer, a sealed object opens to
// its plaintext, and a wrong key, a flipped bit anywhere (nonce,
// ciphertext, tag), another object's nonce, another AD, a truncation or
// another cipher under the same key are all refused with errAuth.
func TestSealersRefuseTampering(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	other := bytes.Repeat([]byte{8}, 32)
	sealers, wrong := testSealers(t, key), testSealers(t, other)
	for _, size := range []int{0, 1, 300, 64 << 10} {
		plain := bytes.Repeat([]byte("memento "), size/8+1)[:size]
		ad := []byte("\x01 blob id")
		for enc, s := range sealers {
			t.Run(fmt.Sprintf("%s/%d", enc, size), func(t *testing.T) {
				sealed := s.seal([]byte("prefix"), plain, ad)[len("prefix"):]
				if len(sealed) != size+s.overhead() {
					t.Fatalf("sealed %d bytes, want %d + overhead %d", len(sealed), size, s.overhead())
				}
				if enc != EncryptionNone && s.overhead() != 40 {
					t.Fatalf("%s overhead %d, want 40 (24-byte nonce, 16-byte tag)", enc, s.overhead())
				}
				got, err := s.open([]byte("x"), sealed, ad)
				if err != nil || !bytes.Equal(got, append([]byte("x"), plain...)) {
					t.Fatalf("open: %q, %v", got, err)
				}
				refused := func(what string, b, ad []byte, s sealer) {
					t.Helper()
					if out, err := s.open(nil, b, ad); !errors.Is(err, errAuth) {
						t.Errorf("%s: opened (%d bytes, %v), want errAuth", what, len(out), err)
					}
				}
				refused("wrong key", sealed, ad, wrong[enc])
				refused("another AD", sealed, []byte("\x02 blob id"), s)
				refused("truncated", sealed[:len(sealed)-1], ad, s)
				refused("shorter than the overhead", sealed[:s.overhead()-1], ad, s)
				for _, pos := range []int{0, 23, 24, len(sealed) / 2, len(sealed) - 16, len(sealed) - 1} {
					if pos >= len(sealed) {
						continue
					}
					b := bytes.Clone(sealed)
					b[pos] ^= 0x10
					refused(fmt.Sprintf("bit flipped at %d of %d", pos, len(b)), b, ad, s)
				}
				for oe, os := range sealers {
					if oe != enc {
						refused("opened by "+oe, sealed, ad, os)
					}
				}
				if enc == EncryptionNone {
					return
				}
				// The nonce of another object sealed with the same key.
				again := s.seal(nil, plain, ad)
				if bytes.Equal(again[:nonceSize], sealed[:nonceSize]) {
					t.Fatal("two seals drew the same nonce")
				}
				swapped := append(bytes.Clone(again[:nonceSize]), sealed[nonceSize:]...)
				refused("another object's nonce", swapped, ad, s)
			})
		}
	}
}

func TestNewDataSealerUnknown(t *testing.T) {
	if _, err := newDataSealer("aes-128-ecb", make([]byte, 32)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `"aes-128-ecb"`) {
		t.Fatalf("unknown encryption: %v", err)
	}
	for _, enc := range []string{EncryptionXAES, EncryptionXChaCha, EncryptionNone} {
		if _, err := newDataSealer(enc, make([]byte, 16)); err == nil {
			t.Errorf("%s accepted a 16-byte key", enc)
		}
	}
}

// TestInitCipher: init writes the cipher asked for (XAES-256-GCM when
// none is), of the current format, and refuses an unknown cipher or one for a
// repository without encryption, writing nothing.
func TestInitCipher(t *testing.T) {
	for _, c := range []struct{ cipher, want string }{
		{"", EncryptionXAES}, {EncryptionXAES, EncryptionXAES}, {EncryptionXChaCha, EncryptionXChaCha},
	} {
		tr := newTestRepo(t, InitOptions{Cipher: c.cipher})
		if cfg := tr.Config(); cfg.Encryption != c.want || cfg.Version != FormatVersion {
			t.Errorf("init --cipher %q: encryption %q, format %d; want %q, %d", c.cipher, cfg.Encryption, cfg.Version, c.want, FormatVersion)
		}
	}
	for _, opts := range []InitOptions{
		{Password: "p", KDF: fastKDF, Cipher: "aes-256-gcm"},
		{Insecure: true, Cipher: EncryptionXAES},
	} {
		dir := filepath.Join(t.TempDir(), "repo")
		be, err := local.Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Init(context.Background(), be, opts)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), opts.Cipher) {
			t.Errorf("init %+v: %v, want ErrInvalidArgument naming the cipher", opts, err)
		}
		keys, _ := os.ReadDir(filepath.Join(dir, DirKeys))
		if _, err := os.Stat(filepath.Join(dir, ConfigName)); !errors.Is(err, os.ErrNotExist) || len(keys) != 0 {
			t.Errorf("init %+v left a config (%v) or %d key files", opts, err, len(keys))
		}
	}
}

// TestConfigEncryptionNeedsFormat3: a config of format 1 or 2 naming
// xaes-256-gcm (no binary wrote one) is refused as corrupt, naming the
// encryption.
func TestConfigEncryptionNeedsFormat3(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	p := filepath.Join(tr.dir, ConfigName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	chmod(t, p, 0o600)
	if err := os.WriteFile(p, bytes.Replace(b, fmt.Appendf(nil, `"version": %d`, FormatVersion), []byte(`"version": 2`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `encryption "xaes-256-gcm" in a repository of format 2`) {
		t.Fatalf("format-2 config with xaes-256-gcm: %v", err)
	}
}

// TestRepositoryKeepsItsCipher: a repository of either cipher, reopened
// and written to (a pack, an index file), seals everything new with its
// own cipher: each sealed object opens with that cipher's sealer of the
// data key and not with the other's; the config is not rewritten; and a
// flipped bit in the nonce, ciphertext or tag of a blob, another blob's
// nonce, or the other cipher, reads back as a CorruptError naming the pack
// and the blob.
func TestRepositoryKeepsItsCipher(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []string{EncryptionXChaCha, EncryptionXAES} {
		t.Run(enc, func(t *testing.T) {
			tr := newTestRepo(t, InitOptions{Cipher: enc})
			cfgBefore, err := os.ReadFile(filepath.Join(tr.dir, ConfigName))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: tr.cache})
			if err != nil {
				t.Fatal(err)
			}
			if r.Config().Encryption != enc {
				t.Fatalf("reopened with encryption %q", r.Config().Encryption)
			}
			p := r.NewPacker(ctx, "")
			var ids []chunk.ID
			for i := range 3 {
				d := bytes.Repeat([]byte{byte(i), 0x5a}, 1000+i)
				id := r.ChunkKey("").Sum(d)
				ids = append(ids, id)
				if err := p.Add(DataBlob, id, 0, len(d), d); err != nil {
					t.Fatal(err)
				}
			}
			packs, _, err := p.Flush()
			if err != nil {
				t.Fatal(err)
			}
			if err := r.SaveIndex(ctx, packs); err != nil {
				t.Fatal(err)
			}
			cfgAfter, err := os.ReadFile(filepath.Join(tr.dir, ConfigName))
			if err != nil || !bytes.Equal(cfgAfter, cfgBefore) {
				t.Fatalf("config changed by writing:\n%s\n%s (%v)", cfgBefore, cfgAfter, err)
			}
			own := testSealers(t, r.ms.DataKey)
			otherEnc := map[string]string{EncryptionXAES: EncryptionXChaCha, EncryptionXChaCha: EncryptionXAES}[enc]

			// Every index file opens with the repository's cipher only.
			idx, err := filepath.Glob(filepath.Join(tr.dir, DirIndex, "*"))
			if err != nil || len(idx) == 0 {
				t.Fatalf("index files %v, %v", idx, err)
			}
			for _, f := range idx {
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := own[enc].open(nil, raw[5:], []byte(KindIndex)); err != nil {
					t.Errorf("index file %s does not open with %s: %v", filepath.Base(f), enc, err)
				}
				if _, err := own[otherEnc].open(nil, raw[5:], []byte(KindIndex)); err == nil {
					t.Errorf("index file %s opens with %s", filepath.Base(f), otherEnc)
				}
			}

			// Every blob too; then damage them one way each.
			locs, err := r.Locate("", ids)
			if err != nil {
				t.Fatal(err)
			}
			packPath := filepath.Join(tr.dir, filepath.FromSlash(PackName(locs[ids[0]].Pack)))
			pack, err := os.ReadFile(packPath)
			if err != nil {
				t.Fatal(err)
			}
			sealedAt := func(b []byte, id chunk.ID) []byte {
				l := locs[id]
				return b[l.Offset : l.Offset+l.Length]
			}
			for _, id := range ids {
				if _, err := own[enc].open(nil, sealedAt(pack, id), blobAD(DataBlob, id)); err != nil {
					t.Errorf("blob %s does not open with %s: %v", id.Short(), enc, err)
				}
				if _, err := own[otherEnc].open(nil, sealedAt(pack, id), blobAD(DataBlob, id)); err == nil {
					t.Errorf("blob %s opens with %s", id.Short(), otherEnc)
				}
			}
			chmod(t, packPath, 0o600)
			damage := map[chunk.ID]func(b []byte){
				ids[0]: func(b []byte) { sealedAt(b, ids[0])[3] ^= 1 },                                               // nonce
				ids[1]: func(b []byte) { s := sealedAt(b, ids[1]); s[len(s)-1] ^= 0x80 },                             // tag
				ids[2]: func(b []byte) { copy(sealedAt(b, ids[2])[:nonceSize], sealedAt(pack, ids[0])[:nonceSize]) }, // another blob's nonce
			}
			for _, id := range ids {
				b := bytes.Clone(pack)
				damage[id](b)
				if err := os.WriteFile(packPath, b, 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := r.ReadBlob(ctx, "", DataBlob, id)
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.What != "pack "+ShortHex(locs[id].Pack) || !strings.Contains(ce.Detail, id.Short()) || !errors.Is(err, errAuth) {
					t.Errorf("damaged blob %s: %v, want a CorruptError naming pack and blob", id.Short(), err)
				}
			}
			if err := os.WriteFile(packPath, pack, 0o600); err != nil {
				t.Fatal(err)
			}
			// The right data key under the other cipher: everything refused.
			r.seal = own[otherEnc]
			for _, id := range ids {
				if _, err := r.ReadBlob(ctx, "", DataBlob, id); !errors.Is(err, ErrCorrupt) {
					t.Errorf("blob %s read with %s: %v, want corrupt", id.Short(), otherEnc, err)
				}
			}
			r.seal = own[enc]
			for _, id := range ids {
				if _, err := r.ReadBlob(ctx, "", DataBlob, id); err != nil {
					t.Errorf("undamaged blob %s: %v", id.Short(), err)
				}
			}
		})
	}
}

// FuzzSealerOpen: no input makes a sealer panic or open what it did not
// seal: arbitrary bytes are refused with errAuth (a fuzzer cannot forge a
// tag); a proper seal of arbitrary plaintext opens to it, in place too
// (openInPlace, as a pack's blobs are opened), and with any one bit
// flipped, or under another cipher, is refused.
func FuzzSealerOpen(f *testing.F) {
	sealers := testSealers(f, bytes.Repeat([]byte{0x42}, 32))
	encs := []string{EncryptionXAES, EncryptionXChaCha, EncryptionNone}
	for i, enc := range encs {
		f.Add(uint8(i), sealers[enc].seal(nil, []byte("seed"), []byte("ad")), []byte("plain"), []byte("ad"), uint32(3))
	}
	f.Add(uint8(0), make([]byte, 39), []byte{}, []byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, which uint8, raw, plain, ad []byte, flip uint32) {
		enc := encs[int(which)%len(encs)]
		s := sealers[enc]
		if out, err := s.open(nil, raw, ad); err == nil {
			// Only possible for bytes that are a real seal: a fuzzer
			// mutating a seed can keep one intact.
			if again, err := s.open(nil, raw, ad); err != nil || !bytes.Equal(out, again) {
				t.Fatalf("%s: open not deterministic: %v", enc, err)
			}
		} else if !errors.Is(err, errAuth) {
			t.Fatalf("%s: open of arbitrary bytes: %v, want errAuth", enc, err)
		}
		sealed := s.seal(nil, plain, ad)
		if got, err := openInPlace(s, bytes.Clone(sealed), ad); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: open in place of a seal: %v", enc, err)
		}
		b := bytes.Clone(sealed)
		bit := int(flip) % (8 * len(b))
		b[bit/8] ^= 1 << (bit % 8)
		if _, err := s.open(nil, b, ad); !errors.Is(err, errAuth) {
			t.Fatalf("%s: bit %d of %d flipped: %v, want errAuth", enc, bit, 8*len(b), err)
		}
		for _, other := range encs {
			if other != enc {
				if _, err := sealers[other].open(nil, sealed, ad); !errors.Is(err, errAuth) {
					t.Fatalf("a %s seal opened by %s: %v", enc, other, err)
				}
			}
		}
	})
}

// TestBatchSealer: XAES-256-GCM's batch sealer (one pack's) seals every
// message under its own random nonce prefix with a random suffix each; what
// it seals opens with the repository's sealer and with a fresh one (a
// reader's, empty cache), and a nonce whose prefix or suffix is changed is
// refused. The other encryptions' batch sealer is the sealer itself.
func TestBatchSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	sealers, readers := testSealers(t, key), testSealers(t, key)
	for enc, s := range sealers {
		b := s.batch()
		if enc != EncryptionXAES {
			if b != s {
				t.Errorf("%s: batch sealer %T, want the sealer itself", enc, b)
			}
			continue
		}
		if b.overhead() != s.overhead() {
			t.Fatalf("batch overhead %d, want %d", b.overhead(), s.overhead())
		}
		plain, ad := []byte("a blob of one pack"), []byte("\x01 blob id")
		m1, m2 := b.seal(nil, plain, ad), b.seal(nil, plain, ad)
		other := s.batch().seal(nil, plain, ad)
		if !bytes.Equal(m1[:12], m2[:12]) {
			t.Errorf("two messages of one batch: nonce prefixes %x and %x, want one", m1[:12], m2[:12])
		}
		if bytes.Equal(m1[12:nonceSize], m2[12:nonceSize]) {
			t.Errorf("two messages of one batch drew the same suffix %x", m1[12:nonceSize])
		}
		if bytes.Equal(other[:12], m1[:12]) {
			t.Errorf("two batches drew the same nonce prefix %x", m1[:12])
		}
		for i, m := range [][]byte{m1, m2, other} {
			for name, r := range map[string]sealer{"own": s, "fresh": readers[enc]} {
				if got, err := r.open(nil, m, ad); err != nil || !bytes.Equal(got, plain) {
					t.Errorf("message %d opened by the %s sealer: %q, %v", i, name, got, err)
				}
			}
		}
		swapped := append(append(bytes.Clone(m1[:12]), m2[12:nonceSize]...), m1[nonceSize:]...)
		for what, c := range map[string][]byte{
			"another message's suffix": swapped,
			"another batch's prefix":   append(bytes.Clone(other[:12]), m1[12:]...),
		} {
			if out, err := s.open(nil, c, ad); !errors.Is(err, errAuth) {
				t.Errorf("%s: opened (%d bytes, %v), want errAuth", what, len(out), err)
			}
		}
	}
}

// TestPackBlobsShareNoncePrefix: in an XAES-256-GCM repository the blobs
// and the header of one pack are sealed under one nonce prefix, so the
// reader derives the pack's key once; two packs have two prefixes; every
// blob's suffix differs; and every blob reads back, by a reader that
// opens the repository afresh too.
func TestPackBlobsShareNoncePrefix(t *testing.T) {
	const target = 1 << 20
	tr := newTestRepo(t, InitOptions{PackSize: target, Cipher: EncryptionXAES})
	ctx := context.Background()
	p := tr.NewPacker(ctx, "")
	data, packs := addSmallBlobs(t, tr, p, 3000) // ~2 packs of 500-byte blobs
	if len(packs) < 2 {
		t.Fatalf("%d packs, want at least 2", len(packs))
	}
	prefixes := map[string]bool{}
	suffixes := map[string]bool{}
	for _, pk := range packs {
		b, err := os.ReadFile(filepath.Join(tr.dir, filepath.FromSlash(PackName(pk.ID))))
		if err != nil {
			t.Fatal(err)
		}
		hdrLen := int(binary.LittleEndian.Uint32(b[len(b)-packTrailerSize:]))
		hdr := b[len(b)-packTrailerSize-hdrLen:]
		prefix := string(hdr[:12])
		if prefixes[prefix] {
			t.Errorf("pack %x: nonce prefix %x of an earlier pack", pk.ID[:4], prefix)
		}
		prefixes[prefix] = true
		for i, bl := range pk.Blobs {
			nonce := b[bl.Offset : bl.Offset+nonceSize]
			if string(nonce[:12]) != prefix {
				t.Fatalf("pack %x blob %d: nonce prefix %x, the header's %x", pk.ID[:4], i, nonce[:12], prefix)
			}
			if suffixes[string(nonce[12:])] {
				t.Fatalf("pack %x blob %d: nonce suffix %x drawn twice", pk.ID[:4], i, nonce[12:])
			}
			suffixes[string(nonce[12:])] = true
		}
	}
	if err := tr.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	fresh, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Repository{tr.Repository, fresh} {
		for id, want := range data {
			got, err := r.ReadBlob(ctx, "", DataBlob, id)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("blob %x reads %q, %v", id[:4], got, err)
			}
		}
	}
}
