package fusefs

import (
	"log/slog"
	"memento/repo/pitr"
	"runtime"
	"time"
)

// Defaults of Options.
const (
	DefaultCacheSize     = 256 << 20
	DefaultTreeCacheSize = 64 << 20
	DefaultReadahead     = 8
	// DefaultKernelReadahead is how far the kernel reads ahead of a
	// sequential reader: 4 MiB lets it send 1 MiB reads, several at once.
	DefaultKernelReadahead = 4 << 20
	DefaultRefreshInterval = 5 * time.Second
	// DefaultPointInTimeViews is how many recovered instants stay on disk.
	DefaultPointInTimeViews = 4
)

// Options tune a mounted repository.
type Options struct {
	// CacheSize bounds the decompressed chunks kept in memory (bytes).
	CacheSize int64
	// TreeCacheSize bounds the decoded directory trees kept in memory (bytes, estimated).
	TreeCacheSize int64
	// Readahead is the least number of chunks past the ones being read that
	// are fetched and decompressed in parallel when a file is read
	// sequentially (at least 16 MiB are, whatever the chunk size); 0 means
	// the default, a negative value turns readahead off.
	Readahead int
	// KernelReadahead is how far ahead of a sequential reader the kernel
	// asks the mount for data (the read_ahead_kb of the mount's backing
	// device), in bytes; 0 means DefaultKernelReadahead, a negative value
	// keeps the kernel's default. The kernel's default of 128 KiB caps every
	// read request at 128 KiB and keeps one in flight; 4 MiB gives 1 MiB
	// requests (MountOptions.MaxWrite), several in flight. Setting it needs
	// write access to /sys/class/bdi (root); without it the default stays,
	// and reads are slower but correct.
	KernelReadahead int64
	// RefreshInterval is how old the snapshot catalog may get before listing a
	// generated directory (snapshots/, spaces/, ...) syncs it with the repository.
	RefreshInterval time.Duration
	// AllowOther lets users other than the one who mounted read the mount; the
	// kernel then enforces each file's mode (default_permissions).
	AllowOther bool
	// PointInTime, when set, materializes spaces/<space>/at/<T>/, and
	// ParseInstant says which instant a directory name under at/ means: the
	// parser `memento restore --at` uses (package instant), its absolute
	// forms only (a name must mean the same instant each time).
	PointInTime  PointInTimeFunc
	ParseInstant func(name string) (int64, error)
	// PointInTimeSel, when set, is used instead of PointInTime, for every
	// at/ of the mount: also those of one database
	// (hosts/<h>/spaces/<space>/at/), which PointInTime cannot recover.
	PointInTimeSel PointInTimeSelFunc
	// PointInTimeViews bounds how many recovered instants stay materialized
	// (each is a restored space on disk); the least recently used one that
	// nothing uses is dropped first. 0 means DefaultPointInTimeViews.
	PointInTimeViews int
	// Planner lists the recoverable ranges of spaces/<space>/at/README; nil
	// means a new one. Pass the planner the PointInTime func recovers with
	// (Recoverer.Planner), so both share what it remembers of snapshots.
	Planner *pitr.Planner
	// PrefetchWorkers is how many goroutines fetch and decode chunks ahead
	// of sequential readers; 0 means twice GOMAXPROCS (a worker waits on the
	// disk between batches). memento mount passes twice the Ps it had before
	// it gave the scheduler more (see cmd/memento).
	PrefetchWorkers int
	// Logger receives one line per failed read or lookup; nil means slog.Default().
	Logger *slog.Logger
	// Debug logs every FUSE request (go-fuse's debug output).
	Debug bool
}

func (o *Options) setDefaults() {
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.TreeCacheSize <= 0 {
		o.TreeCacheSize = DefaultTreeCacheSize
	}
	if o.Readahead == 0 {
		o.Readahead = DefaultReadahead
	}
	if o.KernelReadahead == 0 {
		o.KernelReadahead = DefaultKernelReadahead
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.PointInTimeViews <= 0 {
		o.PointInTimeViews = DefaultPointInTimeViews
	}
	if o.PrefetchWorkers <= 0 {
		o.PrefetchWorkers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// readaheadSpan is the kernel's readahead window as the mount asked for it
// (or the kernel's own 128 KiB when it keeps its default): its reads of a
// sequentially read file arrive out of order by up to two windows.
func (o *Options) readaheadSpan() int64 {
	if o.KernelReadahead > 0 {
		return o.KernelReadahead
	}
	return 128 << 10
}
