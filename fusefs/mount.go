package fusefs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/repo"
)

// fsType is the subtype of memento mounts: /proc/mounts shows "fuse.memento".
const fsType = "memento"

// fuseHint says how to make FUSE usable; every ErrFUSEUnavailable carries it.
const fuseHint = "install fuse3 ('apt-get install fuse3'), load the module ('modprobe fuse'; in a container pass --device /dev/fuse --cap-add SYS_ADMIN), and run as root or as a member of the fuse group"

// Server is a mounted repository.
type Server struct {
	FS         *FS
	srv        *fuse.Server
	mountpoint string
	done       chan struct{}
	closeOnce  sync.Once
}

// Mount mounts r read-only at mountpoint and serves it until Unmount or until
// it is unmounted from outside (Done). Mounting reads no tree and no
// snapshot: it is as fast for a repository of a thousand snapshots as of one.
func Mount(r *repo.Repository, mountpoint string, opts Options) (*Server, error) {
	abs, err := CheckMountpoint(mountpoint)
	if err != nil {
		return nil, err
	}
	if err := checkFUSE(); err != nil {
		return nil, err
	}
	f := New(r, opts)
	raiseMemoryLimit(f.opts, f.log)
	mo := fuse.MountOptions{
		FsName:     "memento:" + strings.NewReplacer(",", "_", " ", "_").Replace(r.Backend().Location()),
		Name:       fsType,
		Options:    []string{"ro"},
		AllowOther: f.opts.AllowOther,
		// Try mount(2) first (we are usually root), then fusermount3.
		DirectMount:      true,
		DirectMountFlags: syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY,
		// Extended attributes are served from the trees (xattr.go); a
		// generated node answers ENODATA (no attributes) without work.
		// Larger requests mean fewer round trips for sequential reads
		// (with KernelReadahead, reads come in 1 MiB).
		MaxWrite: 1 << 20,
		// Every reply is bytes in memory, never a file descriptor, so
		// splicing can only fail: 1 MiB and a header do not fit the largest
		// pipe, and go-fuse would log each failure. A read's reply is the
		// cached chunks' own slices (chunkReply), which go-fuse writes to
		// the kernel with one writev.
		DisableSplice: true,
		Debug:         f.opts.Debug,
	}
	if f.opts.Debug {
		mo.Logger = log.New(os.Stderr, "fuse: ", 0)
	}
	if f.opts.AllowOther {
		// Other users must not read what the snapshot's modes forbid them.
		mo.Options = append(mo.Options, "default_permissions")
	}
	srv, err := fs.Mount(abs, f.Root(), f.nodeOptions(mo))
	if err != nil {
		f.Close()
		return nil, mountError(abs, err)
	}
	if f.opts.KernelReadahead > 0 {
		if err := setKernelReadahead(abs, f.opts.KernelReadahead); err != nil {
			f.log.Debug("kernel readahead of the mount stays at the default", "err", err)
		}
	}
	s := &Server{FS: f, srv: srv, mountpoint: abs, done: make(chan struct{})}
	go func() {
		srv.Wait()
		close(s.done)
	}()
	return s, nil
}

// Mountpoint is the absolute path the repository is mounted at.
func (s *Server) Mountpoint() string { return s.mountpoint }

// Done is closed when the mount is gone: unmounted by Unmount, by `memento
// umount`, by fusermount3 -u, or after a lazy unmount once the last open
// file was closed.
func (s *Server) Done() <-chan struct{} { return s.done }

// Unmount unmounts and stops the server. When files are still open the
// mount is detached lazily (it vanishes from the namespace at once and lives
// until they are closed) and Unmount waits up to grace for that before it
// returns anyway: a shell sitting in the mount must not hang a shutdown.
// It reports whether the unmount was lazy.
func (s *Server) Unmount(grace time.Duration) (lazy bool, err error) {
	select {
	case <-s.done:
	default:
		lazy, err = unmountPath(s.mountpoint)
		if err != nil && !errors.Is(err, ErrNotMounted) {
			return lazy, err
		}
		select {
		case <-s.done:
		case <-time.After(grace):
		}
	}
	s.closeOnce.Do(s.FS.Close)
	return lazy, nil
}

// Unmount unmounts the memento mount at mountpoint, from any process. It
// refuses paths that are not memento mounts. With files open it detaches
// the mount lazily and reports lazy.
func Unmount(mountpoint string) (lazy bool, err error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return false, err
	}
	return unmountPath(abs)
}

func unmountPath(abs string) (lazy bool, err error) {
	typ, ok := mountType(abs)
	if !ok {
		return false, fmt.Errorf("%w: %s is not a mount point", ErrNotMounted, abs)
	}
	if typ != "fuse."+fsType {
		return false, fmt.Errorf("%w: %s is a %s mount, not a memento mount", ErrNotMounted, abs, typ)
	}
	err = unmount(abs, false)
	if errors.Is(err, syscall.EBUSY) {
		lazy = true
		err = unmount(abs, true)
	}
	if err != nil {
		return lazy, fmt.Errorf("unmount %s: %w", abs, err)
	}
	return lazy, nil
}

// unmount calls umount2(2) as root, fusermount3 -u otherwise.
func unmount(abs string, lazy bool) error {
	if os.Geteuid() == 0 {
		flags := 0
		if lazy {
			flags = syscall.MNT_DETACH
		}
		err := syscall.Unmount(abs, flags)
		if err == nil || !errors.Is(err, syscall.EPERM) {
			return err
		}
	}
	bin, err := fusermount()
	if err != nil {
		return err
	}
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, append(args, abs)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "busy") {
			return syscall.EBUSY
		}
		return fmt.Errorf("%s: %v: %s", filepath.Base(bin), err, msg)
	}
	return nil
}

func fusermount() (string, error) {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		if p := "/bin/" + name; isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: fusermount3 not found; %s", ErrFUSEUnavailable, fuseHint)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}

// CheckMountpoint returns the absolute mountpoint, or an error that says what
// is wrong with it and how to fix it.
func CheckMountpoint(mountpoint string) (string, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return "", fmt.Errorf("%w: %s does not exist (create it with 'mkdir -p %s')", ErrMountpoint, abs, abs)
	case errors.Is(err, syscall.ENOTCONN):
		return "", fmt.Errorf("%w: %s is a FUSE mount whose process is gone; clear it with 'memento umount %s'", ErrBusy, abs, abs)
	case err != nil:
		return "", fmt.Errorf("%w: %s: %v", ErrMountpoint, abs, err)
	case !fi.IsDir():
		return "", fmt.Errorf("%w: %s is not a directory", ErrMountpoint, abs)
	}
	if typ, ok := mountType(abs); ok {
		return "", fmt.Errorf("%w: %s is already mounted (%s); unmount it first ('memento umount %s')", ErrBusy, abs, typ, abs)
	}
	return abs, nil
}

// checkFUSE finds out, before mounting, whether FUSE can work at all, so the
// operator gets a message that says how to fix it rather than an errno.
func checkFUSE() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("%w: /dev/fuse is missing; %s", ErrFUSEUnavailable, fuseHint)
	}
	fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err == nil {
		syscall.Close(fd)
		return nil
	}
	if _, ferr := fusermount(); ferr != nil {
		return fmt.Errorf("%w: cannot open /dev/fuse (%v) and fusermount3 is not installed; %s", ErrFUSEUnavailable, err, fuseHint)
	}
	return nil // fusermount3 opens it for us
}

func mountError(abs string, err error) error {
	switch {
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("%w: %s: %v", ErrBusy, abs, err)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %s: %v", ErrMountpoint, abs, err)
	}
	return fmt.Errorf("%w: mount %s: %s; %s", ErrFUSEUnavailable, abs, strings.TrimSpace(err.Error()), fuseHint)
}

// mountType returns the filesystem type mounted at abs (symlinks resolved)
// according to /proc/self/mountinfo, and whether anything is mounted there.
func mountType(abs string) (string, bool) {
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	typ, found := "", false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || unescapeMountinfo(fields[4]) != abs {
			continue
		}
		for i := 6; i < len(fields)-1; i++ {
			if fields[i] == "-" {
				typ, found = fields[i+1], true // the last mount on a path is the visible one
				break
			}
		}
	}
	return typ, found
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
