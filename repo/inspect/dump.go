package inspect

import (
	"archive/tar"
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

// DumpTar writes what is at dir in snapshot sn (a directory, or a single
// file or symlink) to w as a tar archive (PAX), names relative to dir's
// parent ("etc/passwd" for "/etc"), with modes, owners and mtimes; file
// contents as DumpFile reads them.
func DumpTar(ctx context.Context, r Repository, sn *repo.Snapshot, dir string, w io.Writer) error {
	dir = path.Clean("/" + dir)
	tw := tar.NewWriter(w)
	base := path.Dir(dir)
	rel := func(p string) string {
		return strings.TrimPrefix(strings.TrimPrefix(p, base), "/")
	}
	n, _, err := Lookup(ctx, r, sn, dir)
	if err != nil {
		return err
	}
	if n != nil && n.Type == repo.NodeDir {
		if err := tarNode(ctx, r, sn, tw, dir, rel(dir), n); err != nil {
			return err
		}
	}
	err = Walk(ctx, r, sn, dir, func(p string, n *repo.Node) error {
		name := rel(p)
		if dir == "/" {
			name = strings.TrimPrefix(p, "/")
		}
		return tarNode(ctx, r, sn, tw, p, name, n)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func tarNode(ctx context.Context, r Repository, sn *repo.Snapshot, tw *tar.Writer, p, name string, n *repo.Node) error {
	hdr := &tar.Header{Name: name, Mode: int64(nodeMode(n)), Uid: int(n.UID), Gid: int(n.GID),
		ModTime: time.Unix(0, n.MTimeNS), Format: tar.FormatPAX}
	switch n.Type {
	case repo.NodeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case repo.NodeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, n.LinkTarget
	case repo.NodeFile:
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(n.Size)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", p, err)
	}
	if n.Type == repo.NodeFile {
		return DumpFile(ctx, r, sn, p, n, tw)
	}
	return nil
}

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
