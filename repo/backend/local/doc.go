// Package local implements a repository backend on a local directory.
//
// It satisfies repo.Backend structurally (it does not import repo, so the
// dependency points downwards only). Every file is written whole and
// atomically — a temporary file in the destination directory, fsync, rename,
// fsync of the directory — so a crash or kill -9 never leaves a partial file
// under its final name, and a plain `rsync --ignore-existing` of the directory
// is always a valid replica. Temporary files are named ".tmp-*" and are
// invisible to List.
//
// A Backend keeps a few pack files open between ranged reads (handles.go).
// That cache belongs to the Backend, not to the process: Close releases it,
// and whoever opened the Backend closes it when done. On Linux its fsyncs go
// through an io_uring of its own, also released by Close, so that a
// goroutine waiting for one parks instead of holding a P (ring_linux.go).
//
// The POSIX specifics (rename, directory fsync, listing) stay inside this
// package on purpose: callers must not rely on them, because the object-store
// backend has none of them.
package local
