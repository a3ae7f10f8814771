// Package repo is memento's storage core: it stores and retrieves encrypted,
// deduplicated, signed blobs, trees and snapshots in a content-addressed
// repository on any Backend, with its index files, locks and the one blob
// read path (StreamBlobs). The features built on it (backup, WAL archiving,
// point-in-time recovery, restore, verify, maintenance, replication) are the
// packages beside it under repo/; docs/architecture.md draws them.
//
// A repository is a set of immutable files, each named by the BLAKE3 of its bytes
// (the config excepted), so that copying the files one side lacks is a correct
// replication and a file's name proves its integrity without any key:
//
//	config                 plaintext JSON: format version, repository id, public signing key
//	keys/<hash>            the master secret, wrapped by a password-derived key (argon2id)
//	data/<xx>/<hash>       packs: encrypted blobs plus an encrypted header listing them
//	index/<hash>           which blobs each pack holds (the bbolt index is only a cache of these)
//	snapshots/<hash>       signed, encrypted manifests: root tree, time, host, space, sizes
//	locks/<hash>           who is using the repository, refreshed while they do
//
// The byte-level format is specified in docs/repository-format.md. Everything a
// backup writes is ordered so that an interruption at any point leaves a valid
// repository: packs first, then the index file naming them, then the manifest.
package repo
