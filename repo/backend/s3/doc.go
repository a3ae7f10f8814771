// Package s3 implements a repository backend on an S3-compatible object store
// (AWS S3, MinIO, Ceph RGW, ...) with minio-go.
//
// It satisfies repo.Backend structurally and imports nothing of memento's, so
// the dependency points downwards only. The repository's file names map onto
// object keys below an optional prefix: "s3:http://host:9000/bucket/prefix"
// stores "data/ab/ab12..." as the key "prefix/data/ab/ab12...".
//
// Why it is safe without POSIX: every repository file is written once, whole,
// and named by its content hash (the config excepted, which init writes once),
// so a PUT is atomic for readers and idempotent for retries — re-sending a
// write after a lost response can only store the same bytes again. That is
// why Write retries freely, and why nothing here needs rename, exclusive
// create or listing order.
//
// Robustness, because object stores sit behind networks that drop, stall and
// reset connections:
//   - every connection has an I/O deadline that each successful read or write
//     pushes forward, so a stalled transfer fails after Config.IOTimeout
//     instead of hanging, without limiting how long a large transfer may take;
//   - Write, Stat, List, Open, Delete and the bucket checks retry transient
//     failures up to Config.Retries times with exponential backoff and full
//     jitter, and a read that breaks mid-stream resumes at the byte it had
//     reached with a new ranged request; minio-go sends each request once,
//     so an operation that gets no answer fails after at most
//     (Retries+1)·IOTimeout plus the backoffs (retry.go), and once one has,
//     the next ones try once until the endpoint answers again;
//   - the number of connections to the endpoint is bounded (Config.Connections);
//   - every upload carries a checksum the server verifies (by default a
//     CRC32C trailer on an unsigned payload, Config.Checksum), so bytes
//     damaged in transit are refused and sent again, at a fraction of the
//     CPU of minio-go's default per-chunk SHA-256 payload signature;
//   - errors are one line naming the endpoint, bucket and key, and wrap the
//     sentinels ErrAccessDenied, ErrNoBucket and ErrUnreachable (and
//     fs.ErrNotExist for a missing key) so callers can tell them apart.
package s3
