package maintenance

import (
	"context"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// checkPackData is `check --read-data`: every pack is read whole, its BLAKE3
// compared with its name (which catches any changed bit, in used blobs or
// not, in the header or the trailer), and every blob its header lists is
// opened and checked against its keyed hash. It returns the blobs that fail,
// and which they are in each pack (for check --repair to leave them out of
// the index).
func checkPackData(ctx context.Context, r checkRepo, rep *CheckReport, packs map[[32]byte]int64, headers map[[32]byte]index.PackInfo, opts CheckOptions) (map[chunk.ID]string, map[[32]byte]map[chunk.ID]bool, error) {
	var mu sync.Mutex
	bad := map[chunk.ID]string{}
	badIn := map[[32]byte]map[chunk.ID]bool{}
	var read int64
	badBlobLines := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, min(opts.Workers, 4)))
	for id, size := range packs {
		g.Go(func() error {
			what := "pack " + repo.ShortHex(id)
			b, err := repo.ReadRange(gctx, r.Backend(), repo.PackName(id), 0, size)
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				mu.Lock()
				rep.add(SevError, what, "cannot be read: %v", err)
				mu.Unlock()
				return nil
			}
			opts.Progress.Bytes.Add(size)
			nameOK := blake3.Sum256(b) == id
			type failure struct {
				id  chunk.ID
				err error
			}
			var fails []failure
			pi, haveHeader := headers[id]
			if haveHeader {
				space := pi.Space
				if space == repo.PathsSpace {
					space = ""
				}
				// The blobs, in header order, are opened from the pack in
				// memory (already hashed) as any reader opens them; one
				// past the end is a failure of its own.
				var ids []chunk.ID
				var locs []index.Location
				flush := func() error {
					err := streamPacked(gctx, r, space, b, ids, locs, false, func(sb repo.StreamBlob) error {
						if err := gctx.Err(); err != nil {
							return err
						}
						if sb.Err != nil {
							fails = append(fails, failure{sb.ID, sb.Err})
						}
						return nil
					})
					ids, locs = ids[:0], locs[:0]
					return err
				}
				for _, bl := range pi.Blobs {
					if end := int64(bl.Offset) + int64(bl.Length); end > int64(len(b)) {
						if err := flush(); err != nil {
							return err
						}
						fails = append(fails, failure{bl.ID, fmt.Errorf("blob past the end of the pack")})
						continue
					}
					ids = append(ids, bl.ID)
					locs = append(locs, index.Location{Pack: id, Offset: bl.Offset, Length: bl.Length, RawLength: bl.RawLength, Type: bl.Type, Flags: bl.Flags})
				}
				if err := flush(); err != nil {
					return err
				}
			}
			mu.Lock()
			defer mu.Unlock()
			read += size
			if !nameOK {
				rep.add(SevError, what, "content does not match its name (%d bytes changed somewhere; %d of its blobs fail)", size, len(fails))
			}
			for _, f := range fails {
				bad[f.id] = f.err.Error()
				if badIn[id] == nil {
					badIn[id] = map[chunk.ID]bool{}
				}
				badIn[id][f.id] = true
				if badBlobLines++; badBlobLines <= 50 {
					rep.add(SevError, what, "%v", f.err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	if badBlobLines > 50 {
		rep.add(SevError, "packs", "%d more damaged blobs not listed", badBlobLines-50)
	}
	rep.Figures["bytes_read"] = float64(read)
	return bad, badIn, nil
}
