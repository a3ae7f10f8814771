package fusefs

import (
	"github.com/hanwen/go-fuse/v2/fuse"
)

// statfs answers df and statvfs: the size is what the snapshots' backups
// stored (from the catalog, no data read), nothing is free, since nothing can
// be written.
func (f *FS) statfs(out *fuse.StatfsOut) {
	c := f.age(anyAge)
	var stored, files uint64
	for _, sn := range c.snaps {
		stored += sn.Summary.StoredBytes
		files += sn.Summary.Files + sn.Summary.Dirs + sn.Summary.Symlinks
	}
	const bsize = 4096
	*out = fuse.StatfsOut{}
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = (stored + bsize - 1) / bsize
	out.Files = files
	out.NameLen = 255
}
