// Package uring sets up a Linux io_uring and maps its submission and
// completion queues: the kernel ABI that the backup's batch reader and the
// local backend's fsyncs share (Linux only).
package uring
