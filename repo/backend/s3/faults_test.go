package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"memento/repo/backend/backendtest"
	"net"
	"strings"
	"testing"
	"time"

	"memento/repo/backend/s3/miniotest"
)

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Writes and reads through a proxy that resets, stalls or refuses
// connections: retries get every byte through, or the error says so.
func TestBackendFaults(t *testing.T) {
	ctx := context.Background()
	srv := minioServer(t)
	data := backendtest.RandBytes(11, 3<<20)
	name := "data/aa/" + hex64('a')

	t.Run("reset mid-upload", func(t *testing.T) {
		p := miniotest.NewProxy(t, srv.Endpoint)
		cfg, _ := testConfig(t, p.Addr)
		b := openTest(t, cfg)
		// The next three connections die after 1 MiB of upload.
		base := p.Connections()
		p.SetPlan(func(n int64) miniotest.Fault {
			if n <= base+3 {
				return miniotest.Fault{ResetAfter: 1 << 20}
			}
			return miniotest.Fault{}
		})
		if err := b.Write(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("write through resets: %v", err)
		}
		if p.Faulted() == 0 {
			t.Fatal("no connection was faulted; the test tests nothing")
		}
		p.SetPlan(nil)
		if got := backendtest.ReadAll(t, b, name, 0, -1); !bytes.Equal(got, data) {
			t.Fatal("stored bytes differ")
		}
	})

	t.Run("stall mid-upload", func(t *testing.T) {
		p := miniotest.NewProxy(t, srv.Endpoint)
		cfg, _ := testConfig(t, p.Addr)
		cfg.IOTimeout = 700 * time.Millisecond
		b := openTest(t, cfg)
		base := p.Connections()
		p.SetPlan(func(n int64) miniotest.Fault {
			if n == base+1 {
				return miniotest.Fault{StallAfter: 512 << 10} // black hole, forever
			}
			return miniotest.Fault{}
		})
		start := time.Now()
		if err := b.Write(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("write through a stall: %v", err)
		}
		if p.Faulted() != 1 {
			t.Fatalf("%d connections faulted, want 1", p.Faulted())
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("stall took %s to detect", d)
		}
		p.SetPlan(nil)
		if got := backendtest.ReadAll(t, b, name, 0, -1); !bytes.Equal(got, data) {
			t.Fatal("stored bytes differ")
		}
	})

	t.Run("download resumes after reset", func(t *testing.T) {
		p := miniotest.NewProxy(t, srv.Endpoint)
		cfg, _ := testConfig(t, p.Addr)
		b := openTest(t, cfg)
		if err := b.Write(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		rc, err := b.Open(ctx, name, 100, int64(len(data))-200)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(rc, head); err != nil {
			t.Fatal(err)
		}
		p.CutAll() // connections die, the listener stays
		rest, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read did not resume: %v", err)
		}
		if got := append(head, rest...); !bytes.Equal(got, data[100:len(data)-100]) {
			t.Fatalf("resumed read differs (%d bytes)", len(got))
		}
	})

	t.Run("endpoint gone for good", func(t *testing.T) {
		p := miniotest.NewProxy(t, srv.Endpoint)
		cfg, _ := testConfig(t, p.Addr)
		cfg.Retries = 2
		b := openTest(t, cfg)
		p.SetPlan(func(int64) miniotest.Fault { return miniotest.Fault{Refuse: true} })
		err := b.Write(ctx, name, bytes.NewReader(data), int64(len(data)))
		if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `key "repo/`+name+`"`) {
			t.Fatalf("write to a dead endpoint: %v", err)
		}
	})
}

// In a partition an operation makes exactly 1+Config.Retries attempts (one
// connection each: minio-go does not retry inside them), and fails within
// their budget with one line naming the bucket and key; once it has, the
// next operation tries once, and after the endpoint answers again the full
// retries come back. With minio-go's own 3 attempts inside each of ours the
// first write made 6 connections.
func TestPartitionRetriesAsConfigured(t *testing.T) {
	ctx := context.Background()
	srv := minioServer(t)
	p := miniotest.NewProxy(t, srv.Endpoint)
	cfg, _ := testConfig(t, p.Addr)
	cfg.IOTimeout, cfg.Retries, cfg.RetryBase = 300*time.Millisecond, 2, 20*time.Millisecond
	// New, not Open: no idle connection from a bucket check, so every
	// attempt is a new connection through the proxy.
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := backendtest.RandBytes(12, 256<<10)
	name := "data/bb/" + hex64('b')
	attempts := func(what string, want int64, op func() error) error {
		t.Helper()
		base := p.Connections()
		start := time.Now()
		err := op()
		took := time.Since(start)
		if got := p.Connections() - base; got != want {
			t.Errorf("%s: %d attempts (connections), want %d", what, got, want)
		}
		// The budget: attempts of IOTimeout and backoffs of at most
		// RetryBase·(2^Retries−1); four times it for a loaded machine.
		if limit := 4 * (time.Duration(want)*cfg.IOTimeout + cfg.RetryBase*(1<<cfg.Retries-1)); took > limit {
			t.Errorf("%s took %s, want within %s", what, took, limit)
		}
		return err
	}
	write := func() error { return b.Write(ctx, name, bytes.NewReader(data), int64(len(data))) }

	p.Partition()
	err = attempts("write in a partition", 1+int64(cfg.Retries), write)
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), `(bucket "`+cfg.Bucket+`", key "repo/`+name+`" at `+p.Addr+`)`) {
		t.Fatalf("write in a partition: %v", err)
	}
	err = attempts("stat after the endpoint went down", 1, func() error { _, err := b.Stat(ctx, name); return err })
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("stat in a partition: %v", err)
	}
	p.Heal()
	if err := write(); err != nil {
		t.Fatalf("write after the partition healed: %v", err)
	}
	// Its connection is closed once idle for IOTimeout/2 (newTransport),
	// so that the next attempts are new connections again.
	time.Sleep(2 * cfg.IOTimeout)
	p.Partition()
	defer p.Heal()
	if err := attempts("write in a second partition", 1+int64(cfg.Retries), write); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("write in a second partition: %v", err)
	}
}

// An operation that starts while the endpoint is deemed down (b.down) tries
// once, but once the server answers it again, with an error worth a retry
// (here a checksum mismatch: a body damaged in transit), the operation gets
// its retries back: the endpoint is there, and the answer is exactly what
// retries are for. It used to fail on the server's first answer after an
// outage, and under ChecksumAuto that failure also passed for a server
// refusing CRC32C checksums and switched them off for good.
func TestRetriesComeBackWhenTheEndpointAnswers(t *testing.T) {
	ctx := context.Background()
	srv := minioServer(t)
	p := miniotest.NewProxy(t, srv.Endpoint)
	cfg, _ := testConfig(t, p.Addr)
	// One retry is all the damaged body needs; a timeout generous enough
	// for a loaded machine (the partitioned write spends two of them).
	cfg.IOTimeout, cfg.Retries, cfg.RetryBase = 2*time.Second, 1, 20*time.Millisecond
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := backendtest.RandBytes(13, 256<<10)
	name := "data/dd/" + hex64('d')
	write := func() error { return b.Write(ctx, name, bytes.NewReader(data), int64(len(data))) }

	p.Partition()
	if err := write(); !errors.Is(err, ErrUnreachable) {
		p.Heal()
		t.Fatalf("write in a partition: %v", err)
	}
	p.Heal()
	if !b.down.Load() {
		t.Fatal("a write that got no answer after all its retries did not mark the endpoint down")
	}
	// The first connection after the outage damages the body: the server
	// answers with a checksum mismatch.
	base := p.Connections()
	p.SetPlan(func(n int64) miniotest.Fault {
		if n == base+1 {
			return miniotest.Fault{CorruptAt: 100 << 10}
		}
		return miniotest.Fault{}
	})
	defer p.SetPlan(nil)
	if err := write(); err != nil {
		t.Fatalf("write after the outage, first attempt damaged in transit: %v", err)
	}
	if p.Faulted() != 1 {
		t.Fatalf("%d connections faulted, want 1", p.Faulted())
	}
	if b.down.Load() {
		t.Error("the endpoint is still deemed down after a write succeeded")
	}
	// Without its retry the mismatch looked like a server refusing
	// CRC32C checksums, and switched the backend off them for good.
	if b.noTrailers.Load() {
		t.Error("one body damaged in transit switched the backend off CRC32C checksums for good")
	}
	if got := backendtest.ReadAll(t, b, name, 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes differ from the %d written", len(got), len(data))
	}
}
