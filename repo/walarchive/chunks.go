package walarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/repo"
)

// storeStream cuts r into chunks with the repository's parameters for
// relPath (a WAL segment gets its set's WAL parameters, exactly as a backup
// of the same file does, so archived WAL and snapshots share chunks), stores the
// chunks the repository lacks through the run's packer and returns every
// chunk's ID and size in stream order.
//
// With holdLast, the last chunk (the one cut by the end of r, not by a
// boundary) is neither stored nor listed: its bytes are returned instead
// (a chunk.Buffer the caller puts back), for the caller to store whole or
// only in part (shipTail's pieces). tail is nil when r was empty.
//
// It uses the chunker directly rather than chunk.Pipeline.Split because the
// archive record needs each chunk's size, which Split does not return for
// chunks that are already known. Hashing, compression and sealing run on
// GOMAXPROCS workers fed through a bounded channel, so memory stays at a few
// chunks.
func (w *walRun) storeStream(ctx context.Context, r io.Reader, relPath string, holdLast bool) (out []WALChunk, tail *[]byte, err error) {
	params := w.a.r.Config().ParamSet().For(relPath)
	ch, err := chunk.NewChunker(r, w.a.r.Polynomial(), params)
	if err != nil {
		return nil, nil, err
	}
	defer ch.Release()
	type job struct {
		i   int
		buf *[]byte
	}
	var mu sync.Mutex
	jobs := make(chan job, runtime.GOMAXPROCS(0))
	g, gctx := errgroup.WithContext(ctx)
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			for j := range jobs {
				id := w.key.Sum(*j.buf)
				mu.Lock()
				out[j.i].ID = id
				mu.Unlock()
				err := w.storeChunk(id, *j.buf)
				chunk.PutBuffer(j.buf)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	send := func(buf *[]byte) {
		mu.Lock()
		out = append(out, WALChunk{Size: uint32(len(*buf))})
		i := len(out) - 1
		mu.Unlock()
		select {
		case jobs <- job{i, buf}:
		case <-gctx.Done():
			chunk.PutBuffer(buf)
		}
	}
	var rerr error
	var held *[]byte // the chunk read last: sent once the next one shows it ended at a boundary
	for {
		if err := gctx.Err(); err != nil {
			break
		}
		buf := chunk.Buffer(int(params.Max))
		data, err := ch.Next((*buf)[:0])
		if err != nil {
			chunk.PutBuffer(buf)
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
		*buf = data
		if held != nil {
			send(held)
		}
		held = buf
	}
	if held != nil && !holdLast && rerr == nil {
		send(held)
		held = nil
	}
	close(jobs)
	err = g.Wait()
	if err == nil {
		err = rerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if held != nil {
			chunk.PutBuffer(held)
		}
		return nil, nil, err
	}
	return out, held, nil
}

// storeBytes stores b as one chunk (deduplicated as storeChunk does) and
// returns its ID and size.
func (w *walRun) storeBytes(b []byte) (WALChunk, error) {
	c := WALChunk{ID: w.key.Sum(b), Size: uint32(len(b))}
	return c, w.storeChunk(c.ID, b)
}

// storeChunk compresses, seals and packs a chunk the repository lacks.
// Called concurrently by storeStream's workers. A chunk is deduplicated
// against the space's known set (chunks in packs that an index file
// describes) and, within the run, against the packer's claims; it joins the
// known set only after its pack and index file are written (ArchiveSpace),
// so that a run whose packs or index file never reached the repository
// leaves nothing a later run would reference.
func (w *walRun) storeChunk(id chunk.ID, raw []byte) error {
	w.sa.knownMu.Lock()
	_, ok := w.sa.known[id]
	w.sa.knownMu.Unlock()
	if ok || !w.packer.Claim(id) {
		return nil
	}
	// As a backup of the segment stores it (form 0x04 in a format-4 repository).
	stored, compressed := chunk.CompressWAL(nil, raw, chunk.DefaultLevel, w.a.r.Config().WALRecords())
	var flags uint8
	if compressed {
		flags |= repo.FlagCompressed
	}
	if err := w.packer.Add(repo.DataBlob, id, flags, len(raw), stored); err != nil {
		return fmt.Errorf("store chunk %s: %w", id.Short(), err)
	}
	return nil
}
