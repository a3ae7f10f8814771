package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"memento/repo"
)

// specialType returns the node type of a FIFO, socket or device node, or "".
func specialType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return repo.NodeFIFO
	case m&fs.ModeSocket != 0:
		return repo.NodeSocket
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return repo.NodeCharDev
	case m&fs.ModeDevice != 0:
		return repo.NodeBlockDev
	}
	return ""
}

// setLinkFields records a regular file's hard-link group and a device
// node's device number from its stat.
func setLinkFields(n *repo.Node, fi fs.FileInfo) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	switch n.Type {
	case repo.NodeFile:
		if st.Nlink > 1 {
			n.DeviceID, n.Links = st.Dev, uint64(st.Nlink)
		}
	case repo.NodeCharDev, repo.NodeBlockDev:
		n.Rdev = st.Rdev
	}
}

// readXattrs returns the extended attributes of e (not following a
// symlink; listed relative to its directory if open: entry.listxattr), sorted by name: every one the process can list and read, as
// restic does (user.* always; security.* and trusted.* as root). A file
// system without extended attributes gives none; any other failure is an
// error, since the snapshot would silently lack them.
func readXattrs(e entry) ([]repo.Xattr, error) {
	path := e.path
	names, err := listXattrs(e)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	out := make([]repo.Xattr, 0, len(names))
	for _, name := range names {
		v, err := getXattr(path, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("backup %s: extended attribute %s: %w", path, name, err)
		}
		out = append(out, repo.Xattr{Name: name, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func xattrUnsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

func listXattrs(e entry) ([]string, error) {
	path := e.path
	buf := make([]byte, 1024)
	for {
		n, err := e.listxattr(buf)
		switch {
		case xattrUnsupported(err):
			return nil, nil
		case errors.Is(err, unix.ERANGE):
			sz, err := e.listxattr(nil)
			if err != nil {
				return nil, fmt.Errorf("backup %s: list extended attributes: %w", path, err)
			}
			buf = make([]byte, sz+1024)
			continue
		case err != nil:
			return nil, fmt.Errorf("backup %s: list extended attributes: %w", path, err)
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Lgetxattr(path, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+256)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n:n], nil
	}
}
