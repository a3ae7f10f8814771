package repo

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"memento/chunk"
)

// TestStreamBlobsEndToEnd: StreamOptions.EndToEnd skips the keyed ID
// check of the data blobs it names, and nothing else: a forged blob
// (validly sealed, the right length, content not its ID's) is delivered as
// it is under it, and refused without it, for a blob it does not name, and
// with Stored; one whose plaintext is not the index's length is refused;
// damage at rest still fails the seal and falls back to the other copy.
func TestStreamBlobsEndToEnd(t *testing.T) {
	ctx := context.Background()
	fx := newStreamFixture(t, 4)
	key := fx.r.ChunkKey("")
	d := bytes.Repeat([]byte("forged "), 3000)
	forged := bytes.Clone(d)
	forged[100] ^= 1
	fid, sid := key.Sum(d), key.Sum(append(bytes.Clone(d), 'x'))
	p := fx.r.NewPacker(ctx, "")
	if err := p.Add(DataBlob, fid, 0, len(d), forged); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(DataBlob, sid, 0, len(d)+1, forged); err != nil { // one byte short
		t.Fatal(err)
	}
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.r.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	ids := []chunk.ID{fx.ids[0], fid, sid, fx.ids[2]}
	all := func(chunk.ID) bool { return true }
	run := func(opts StreamOptions) ([]error, [][]byte) {
		errs := make([]error, len(ids))
		got := make([][]byte, len(ids))
		err := fx.r.StreamBlobs(ctx, "", DataBlob, ids, opts, func(b StreamBlob) error {
			errs[b.Index], got[b.Index] = b.Err, bytes.Clone(b.Data) // borrowed: valid during the call
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return errs, got
	}
	wantErr := func(what string, err error, text string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: %v, want an error with %q", what, err, text)
		}
	}
	for _, p := range streamPolicies {
		opts := p.opts
		opts.EndToEnd = all
		errs, got := run(opts)
		if errs[0] != nil || errs[1] != nil || errs[3] != nil || !bytes.Equal(got[1], forged) || !bytes.Equal(got[0], fx.data[fx.ids[0]]) {
			t.Errorf("%s, end to end: errors %v, forged blob delivered as is: %v", p.name, errs, bytes.Equal(got[1], forged))
		}
		wantErr(p.name+", end to end, short blob", errs[2], "data blob "+sid.Short()+": "+strconv.Itoa(len(d))+" bytes, index says "+strconv.Itoa(len(d)+1))
		errs, _ = run(p.opts)
		wantErr(p.name+", checked", errs[1], "data blob "+fid.Short()+": content does not match its ID")
		opts.EndToEnd = func(id chunk.ID) bool { return id != fid }
		errs, _ = run(opts)
		wantErr(p.name+", not named", errs[1], "content does not match its ID")
		opts.EndToEnd, opts.Stored = all, true
		errs, _ = run(opts)
		wantErr(p.name+", stored", errs[1], "content does not match its ID")
	}
	locs := fx.locations(t, fx.ids[2])
	fx.damage(t, locs[0])
	errs, _ := run(StreamOptions{EndToEnd: all})
	wantErr("damaged, end to end", errs[3], "pack "+ShortHex(locs[0].Pack))
	errs, got := run(StreamOptions{EndToEnd: all, Fallback: true})
	if errs[3] != nil || !bytes.Equal(got[3], fx.data[fx.ids[2]]) {
		t.Errorf("damaged, end to end, fallback: %v", errs[3])
	}
}
