package repo

// Bridges for package repo/maintenance (prune, helper PRUNE) to private
// symbols of the WAL archive files, which another helper moves at the same
// time. The integrator replaces them with the walarchive package's exports.

// DirWALBridge is dirWAL.
const DirWALBridge = dirWAL

// KindWALArchiveBridge is kindWALArchive.
const KindWALArchiveBridge = kindWALArchive

// WalArchiveFileBridge is walArchiveFile.
type WalArchiveFileBridge = walArchiveFile

// WalSpaceDirBridge is walSpaceDir.
func (r *Repository) WalSpaceDirBridge(space string) string { return r.walSpaceDir(space) }

// FileSeqBridge is the fileSeq field.
func (w *WALArchive) FileSeqBridge() uint64 { return w.fileSeq }
