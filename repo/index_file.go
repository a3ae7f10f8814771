package repo

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"memento/chunk"
	"memento/index"
)

// IndexFile is the repository's durable record of which blobs each pack holds.
// A backup writes one after its packs and before its manifest. The local bbolt
// index merges these files; `memento index rebuild` can also recreate it from
// the pack headers alone.
type IndexFile struct {
	Version int         `json:"version"`
	Packs   []indexPack `json:"packs"`
}

type indexPack struct {
	ID    chunk.ID    `json:"id"`
	Size  int64       `json:"size"`
	Space string      `json:"space"`
	Blobs []indexBlob `json:"blobs"`
}

type indexBlob struct {
	ID        chunk.ID `json:"id"`
	Type      uint8    `json:"t"`
	Flags     uint8    `json:"f"`
	Offset    uint32   `json:"o"`
	Length    uint32   `json:"l"`
	RawLength uint32   `json:"r"`
}

const KindIndex = "index"

// appendJSON appends f as json.Marshal writes it, byte for byte
// (TestIndexFileJSON), without its reflection: a backup's index file is
// written after its last pack, on the way to its manifest, and
// json.Marshal spent ~5 us a blob on it (a hex string made per ID), 0.2 s
// of a first backup of Python's lib (46,000 blobs; docs/benchmarks.md,
// "Issue 18, session 21: the first backup of small-file trees").
func (f IndexFile) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"version":`...)
	dst = strconv.AppendInt(dst, int64(f.Version), 10)
	dst = append(dst, `,"packs":`...)
	if f.Packs == nil {
		return append(dst, "null}"...)
	}
	dst = append(dst, '[')
	var space string
	var spaceJSON []byte
	for i := range f.Packs {
		p := &f.Packs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":"`...)
		dst = hex.AppendEncode(dst, p.ID[:])
		dst = append(dst, `","size":`...)
		dst = strconv.AppendInt(dst, p.Size, 10)
		dst = append(dst, `,"space":`...)
		if spaceJSON == nil || p.Space != space {
			space = p.Space
			spaceJSON, _ = json.Marshal(space) // a string always encodes; its escaping is json's
		}
		dst = append(dst, spaceJSON...)
		dst = append(dst, `,"blobs":`...)
		if p.Blobs == nil {
			dst = append(dst, "null}"...)
			continue
		}
		dst = append(dst, '[')
		for j := range p.Blobs {
			b := &p.Blobs[j]
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":"`...)
			dst = hex.AppendEncode(dst, b.ID[:])
			dst = append(dst, `","t":`...)
			dst = strconv.AppendUint(dst, uint64(b.Type), 10)
			dst = append(dst, `,"f":`...)
			dst = strconv.AppendUint(dst, uint64(b.Flags), 10)
			dst = append(dst, `,"o":`...)
			dst = strconv.AppendUint(dst, uint64(b.Offset), 10)
			dst = append(dst, `,"l":`...)
			dst = strconv.AppendUint(dst, uint64(b.Length), 10)
			dst = append(dst, `,"r":`...)
			dst = strconv.AppendUint(dst, uint64(b.RawLength), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

func toIndexFile(packs []index.PackInfo) IndexFile {
	f := IndexFile{Version: 1, Packs: make([]indexPack, len(packs))}
	for i, p := range packs {
		ip := indexPack{ID: p.ID, Size: p.Size, Space: p.Space, Blobs: make([]indexBlob, len(p.Blobs))}
		for j, b := range p.Blobs {
			ip.Blobs[j] = indexBlob{ID: b.ID, Type: b.Type, Flags: b.Flags, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength}
		}
		f.Packs[i] = ip
	}
	return f
}

func (f *IndexFile) PackInfos() []index.PackInfo {
	out := make([]index.PackInfo, len(f.Packs))
	for i, p := range f.Packs {
		pi := index.PackInfo{ID: p.ID, Size: p.Size, Space: p.Space, Blobs: make([]index.BlobInfo, len(p.Blobs))}
		for j, b := range p.Blobs {
			pi.Blobs[j] = index.BlobInfo{ID: b.ID, Type: b.Type, Flags: b.Flags, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength}
		}
		out[i] = pi
	}
	return out
}

// SaveIndex records packs in new index files and merges them into the
// local cache. Packs listing more than indexBatchBlobs blobs in all go to
// several files, written one after the other and merged together: one
// file for a whole backup was built in memory at once, and past 256 MiB of
// JSON (~1.7 million blobs) no reader would open it (MaxMetadataFile).
func (r *Repository) SaveIndex(ctx context.Context, packs []index.PackInfo) error {
	var files []index.File
	for len(packs) > 0 {
		n := indexBatch(packs)
		id, err := r.SaveFile(ctx, DirIndex, KindIndex, toIndexFile(packs[:n]))
		if err != nil {
			return err
		}
		files = append(files, index.File{Name: FileName(DirIndex, id), Packs: packs[:n]})
		packs = packs[n:]
	}
	if len(files) == 0 {
		return nil
	}
	return r.mergeIndexFiles(files)
}

// mergeIndexFiles merges index files this process wrote into the local
// cache (index.AddFiles: one transaction, or batches of them for a large
// merge) and drops the locations it had looked up.
func (r *Repository) mergeIndexFiles(files []index.File) error {
	if err := r.ix.AddFiles(files); err != nil {
		return fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	r.ForgetLocations()
	return nil
}

// indexBatch returns how many of packs, from the first, one index file
// lists: as many as indexBatchBlobs allows, and at least one.
func indexBatch(packs []index.PackInfo) int {
	n, blobs := 0, 0
	for n < len(packs) && (n == 0 || blobs+len(packs[n].Blobs) <= indexBatchBlobs) {
		blobs += len(packs[n].Blobs)
		n++
	}
	return n
}

// SaveIndexFile is SaveIndex in two steps, for packs that fit one index
// file (the WAL archiver's few): it records packs in a new index file, in the repository (durably, where the backend can) when it returns,
// and returns the merge of that file into the local cache, which the caller
// must call. The caller may write files that name the packs' blobs (a WAL
// archive record) while the merge runs: the local index is a cache of the
// index files, and one that misses a file only deduplicates less (a new
// process adds the file when it opens the repository).
func (r *Repository) SaveIndexFile(ctx context.Context, packs []index.PackInfo) (merge func() error, err error) {
	if len(packs) == 0 {
		return func() error { return nil }, nil
	}
	id, err := r.SaveFile(ctx, DirIndex, KindIndex, toIndexFile(packs))
	if err != nil {
		return nil, err
	}
	return func() error {
		return r.mergeIndexFiles([]index.File{{Name: FileName(DirIndex, id), Packs: packs}})
	}, nil
}

// indexBatchBlobs bounds one repository index file (about 150 bytes of JSON
// per blob, well under MaxMetadataFile), and with it the memory of its
// encoding and of its reading.
const indexBatchBlobs = 100_000

// WriteIndexFiles describes packs in as few index files as indexBatchBlobs
// allows, in pack ID order so that the same packs always give the same
// files, and calls done with each file's name once it is written. check
// --repair and prune use it to replace the index files they supersede.
func (r *Repository) WriteIndexFiles(ctx context.Context, infos []index.PackInfo, done func(name string) error) error {
	sort.Slice(infos, func(i, j int) bool { return ShortHex(infos[i].ID) < ShortHex(infos[j].ID) })
	for len(infos) > 0 {
		n := indexBatch(infos)
		id, err := r.SaveFile(ctx, DirIndex, KindIndex, toIndexFile(infos[:n]))
		if err != nil {
			return fmt.Errorf("write index file: %w", err)
		}
		if err := done(FileName(DirIndex, id)); err != nil {
			return err
		}
		infos = infos[n:]
	}
	return nil
}

// indexFileBlobs counts the blobs f lists.
func indexFileBlobs(f IndexFile) int {
	n := 0
	for _, p := range f.Packs {
		n += len(p.Blobs)
	}
	return n
}
