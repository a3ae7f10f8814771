// Package directio writes large files, and reads large ranges of them,
// around the page cache.
//
// A backup writes each pack once and does not read it back; a restore writes
// each file once and the operator reads it later, if at all. Through the page
// cache every byte is copied into kernel pages that must then be found,
// written back and reclaimed, which on the machines memento was measured on
// cost more system CPU than encrypting the same bytes (a 16 MiB pack: about
// 30 ms of system time buffered, 1 ms with O_DIRECT). [Writer] hands aligned
// blocks straight to the device with O_DIRECT where the file system allows it,
// writes the unaligned tail through the page cache, and silently falls back
// to ordinary writes everywhere else (tmpfs, non-Linux systems), so callers
// never need to know which they got.
//
// Reads go around the page cache the same way where a caller asks for it
// ([OpenReader], [ReadFullAt]): a second descriptor with O_DIRECT on the
// file, reading the aligned superset of a range into an aligned buffer.
// L2 verify reads every pack once that way.
//
// The package imports nothing of memento's: the local backend and the
// restorer both use it.
package directio
