package s3

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"memento/repo/backend/s3/miniotest"
)

// One MinIO serves the package's tests; each test uses its own bucket.
var (
	server    *miniotest.Server
	serverErr string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run is TestMain's body, apart so that its deferred cleanup runs: os.Exit
// skips defers, and a leaked data directory keeps every byte the tests and
// benchmarks uploaded.
func run(m *testing.M) int {
	bin, why := miniotest.Binary()
	if bin == "" {
		serverErr = why
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "memento-s3-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if server, err = miniotest.StartBinary(bin, dir); err != nil {
		serverErr = err.Error()
	}
	defer func() {
		if server != nil {
			server.Stop()
		}
	}()
	return m.Run()
}

// minioServer returns the package's MinIO, skipping the test without one
// (failing it under CI=true).
func minioServer(t testing.TB) *miniotest.Server {
	t.Helper()
	if server == nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MinIO is required in CI: %s", serverErr)
		}
		t.Skipf("skipping: %s", serverErr)
	}
	return server
}

// testConfig returns a config for a fresh bucket with quick timeouts.
func testConfig(t testing.TB, endpoint string) (Config, *miniotest.Server) {
	s := minioServer(t)
	if endpoint == "" {
		endpoint = s.Endpoint
	}
	return Config{Endpoint: endpoint, Bucket: s.MakeBucket(t), Prefix: "repo", AccessKey: miniotest.AccessKey,
		SecretKey: miniotest.SecretKey, Region: "us-east-1", IOTimeout: 10 * time.Second, RetryBase: 50 * time.Millisecond}, s
}

func openTest(t testing.TB, cfg Config) *Backend {
	t.Helper()
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
