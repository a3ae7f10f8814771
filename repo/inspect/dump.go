package inspect

import (
	"archive/tar"
	"archive/zip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/zeebo/blake3"

	"memento/repo"
)

// dumpAhead bounds the stored bytes read ahead of the writer.
const dumpAhead = 32 << 20

// DumpFile writes the content of the file node n of snapshot sn (at p, for
// errors) to w: every chunk read through the one blob read path and
// verified, a damaged one read from another copy when the index knows
// one, and the whole content's BLAKE3 compared with the tree's at the end
// (a repo.ErrCorrupt error then: w already has the bytes).
func DumpFile(ctx context.Context, r Repository, sn *repo.Snapshot, p string, n *repo.Node, w io.Writer) error {
	if n.Type != repo.NodeFile {
		return fmt.Errorf("snapshot %s: %s is a %s, not a file", sn.ShortID(), p, n.Type)
	}
	h := blake3.New()
	out := io.MultiWriter(w, h)
	var written uint64
	opts := repo.StreamOptions{Ahead: dumpAhead, Buffer: repo.BufferBorrowed, Fallback: true, Who: "dump"}
	err := r.StreamBlobs(ctx, sn.Space, repo.DataBlob, n.Content, opts, func(b repo.StreamBlob) error {
		if b.Err != nil {
			return fmt.Errorf("snapshot %s: %s: %w", sn.ShortID(), p, b.Err)
		}
		written += uint64(len(b.Data))
		_, err := out.Write(b.Data)
		return err
	})
	if err != nil {
		return err
	}
	var sum repo.Hash
	h.Sum(sum[:0])
	if written != n.Size || n.BLAKE3 == nil || sum != *n.BLAKE3 {
		return repo.Corruptf("snapshot "+sn.ShortID(), "%s: content of %d bytes with BLAKE3 %s, the tree says %d bytes", p, written, sum, n.Size)
	}
	return nil
}

// Archive formats of DumpArchive.
const (
	Tar = "tar" // PAX tar: modes, owners, mtimes, symlinks
	Zip = "zip" // zip (deflate): modes, mtimes, symlinks as Info-ZIP stores them
)

// DumpArchive writes what is at dir in snapshot sn (a directory, or a
// single file or symlink) to w as an archive of format (Tar or Zip), names
// relative to dir's parent ("etc/passwd" for "/etc"), file contents as
// DumpFile reads them.
func DumpArchive(ctx context.Context, r Repository, sn *repo.Snapshot, dir, format string, w io.Writer) error {
	var aw archiveWriter
	switch format {
	case Tar:
		aw = &tarWriter{tw: tar.NewWriter(w)}
	case Zip:
		aw = &zipWriter{zw: zip.NewWriter(w)}
	default:
		return fmt.Errorf("archive format %q: want %s or %s", format, Tar, Zip)
	}
	dir = path.Clean("/" + dir)
	base := path.Dir(dir)
	rel := func(p string) string {
		return strings.TrimPrefix(strings.TrimPrefix(p, base), "/")
	}
	n, _, err := Lookup(ctx, r, sn, dir)
	if err != nil {
		return err
	}
	entry := func(p string, n *repo.Node) error {
		content := func(w io.Writer) error { return DumpFile(ctx, r, sn, p, n, w) }
		if err := aw.add(rel(p), n, content); err != nil {
			return fmt.Errorf("%s %s: %w", format, p, err)
		}
		return nil
	}
	if n != nil && n.Type == repo.NodeDir {
		if err := entry(dir, n); err != nil {
			return err
		}
	}
	if err := Walk(ctx, r, sn, dir, entry); err != nil {
		return err
	}
	return aw.close()
}

// archiveWriter adds snapshot nodes to an archive.
type archiveWriter interface {
	add(name string, n *repo.Node, content func(io.Writer) error) error
	close() error
}

type tarWriter struct{ tw *tar.Writer }

func (t *tarWriter) add(name string, n *repo.Node, content func(io.Writer) error) error {
	hdr := &tar.Header{Name: name, Mode: int64(nodeMode(n)), Uid: int(n.UID), Gid: int(n.GID),
		ModTime: time.Unix(0, n.MTimeNS), Format: tar.FormatPAX}
	switch n.Type {
	case repo.NodeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case repo.NodeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, n.LinkTarget
	case repo.NodeFile:
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(n.Size)
	default:
		return fmt.Errorf("a node of type %q cannot be archived", n.Type)
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if n.Type == repo.NodeFile {
		return content(t.tw)
	}
	return nil
}

func (t *tarWriter) close() error { return t.tw.Close() }

type zipWriter struct{ zw *zip.Writer }

func (z *zipWriter) add(name string, n *repo.Node, content func(io.Writer) error) error {
	hdr := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Unix(0, n.MTimeNS)}
	mode := fs.FileMode(n.Mode) & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	switch n.Type {
	case repo.NodeDir:
		hdr.Name, hdr.Method, mode = name+"/", zip.Store, mode|fs.ModeDir
	case repo.NodeSymlink:
		hdr.Method, mode = zip.Store, mode|fs.ModeSymlink
	case repo.NodeFile:
	default:
		return fmt.Errorf("a node of type %q cannot be archived", n.Type)
	}
	hdr.SetMode(mode)
	w, err := z.zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	switch n.Type {
	case repo.NodeFile:
		return content(w)
	case repo.NodeSymlink:
		_, err = io.WriteString(w, n.LinkTarget) // the Info-ZIP convention
		return err
	}
	return nil
}

func (z *zipWriter) close() error { return z.zw.Close() }

// nodeMode is the tar mode of a node: permissions and the setuid, setgid
// and sticky bits in their Unix places.
func nodeMode(n *repo.Node) uint32 {
	fm := fs.FileMode(n.Mode)
	m := uint32(fm.Perm())
	if fm&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fm&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fm&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}
