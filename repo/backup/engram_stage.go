package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"memento/engram"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// stage copies the space's mutable tiers into a private directory beside the
// data dir's spaces/ (same filesystem: copy_file_range, or a reflink where the
// filesystem has them), so the database stays paused only for that copy.
// Redirect then points the archiver at the copies; Close removes them.
func (e *EngramRecorder) stage(spaceDir string) error {
	dir, err := os.MkdirTemp(e.dataDir, ".memento-stage-"+e.space+"-")
	if err != nil {
		return err
	}
	e.stageDir = dir
	for _, name := range engram.StagedEntries {
		src := filepath.Join(spaceDir, name)
		if fi, err := os.Lstat(src); err == nil && fi.Mode()&fs.ModeSymlink != 0 && slices.Contains(engram.SpaceSubdirs, name) {
			// A tier kept elsewhere is backed up as the directory it
			// points to (symlinkedDirs): stage that directory.
			if src, err = filepath.EvalSymlinks(src); err != nil {
				return fmt.Errorf("stage %s: %w", name, err)
			}
		}
		err := copyEntry(src, filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stage %s: %w", name, err)
		}
	}
	return nil
}

// Redirect is the BackupOptions.Redirect hook: the staged copy of an entry,
// if there is one.
func (e *EngramRecorder) Redirect(rel string) string {
	if e.stageDir == "" {
		return ""
	}
	for _, name := range engram.StagedEntries {
		if rel == "spaces/"+e.space+"/"+name {
			p := filepath.Join(e.stageDir, name)
			if _, err := os.Lstat(p); err == nil {
				return p
			}
		}
	}
	return ""
}

// Close stops a replay still running (the backup failed before waiting for
// it) and removes the staged copies. Safe to call more than once.
func (e *EngramRecorder) Close() error {
	if e.cancel != nil {
		e.cancel()
		<-e.replayed
	}
	if e.start != nil {
		e.start.close()
		e.start = nil
	}
	if e.stageDir == "" {
		return nil
	}
	err := os.RemoveAll(e.stageDir)
	e.stageDir = ""
	return err
}

func (e *EngramRecorder) log() *slog.Logger { return slog.Default() }

// copyEntry copies a file or directory tree, keeping mode, owner and mtime
// so that the snapshot records the originals' metadata.
func copyEntry(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, ent := range ents {
			if err := copyEntry(filepath.Join(src, ent.Name()), filepath.Join(dst, ent.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	case fi.Mode().IsRegular():
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	default:
		return nil // sockets, devices: the archiver skips them anyway
	}
	if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		_ = os.Lchown(dst, int(st.Uid), int(st.Gid))
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range between files
		out.Close()
		return err
	}
	return out.Close()
}
