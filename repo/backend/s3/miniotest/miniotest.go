// Package miniotest starts a real MinIO server on 127.0.0.1 for tests and
// benchmarks, and puts a fault-injecting TCP proxy in front of it. Tests of
// the S3 backend, of replication and of the CLI use it; nothing here fakes
// S3.
//
// The binary is $MEMENTO_MINIO_BIN, else `minio` on PATH, else
// .cache/bin/minio in the module root (where .ci/run and scripts/minio.sh
// build it). When none exists the test is skipped, except under CI=true,
// where a missing MinIO is a failure: CI must never go green by skipping.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credentials of every test server.
const (
	AccessKey = "mementotest"
	SecretKey = "mementotest-secret-key"
)

// Server is a running MinIO.
type Server struct {
	Endpoint string // 127.0.0.1:port
	Dir      string // data directory
	cmd      *exec.Cmd
	log      *bytes.Buffer
}

// Binary finds the MinIO binary, or returns "" and why not.
func Binary() (string, string) {
	if p := os.Getenv("MEMENTO_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("MEMENTO_MINIO_BIN=%s: %v", p, err)
		}
		return p, ""
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, ""
	}
	if dir, err := os.Getwd(); err == nil {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				p := filepath.Join(d, ".cache", "bin", "minio")
				if _, err := os.Stat(p); err == nil {
					return p, ""
				}
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", "no MinIO binary: set MEMENTO_MINIO_BIN, put minio on PATH, or run scripts/minio.sh build"
}

// Require returns the MinIO binary or skips the test (fails it under CI=true).
func Require(tb testing.TB) string {
	tb.Helper()
	bin, why := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("MinIO is required in CI: %s", why)
		}
		tb.Skipf("skipping: %s", why)
	}
	return bin
}

// Start runs a fresh MinIO with a temporary data directory on a free port of
// 127.0.0.1 and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Require(tb)
	s, err := StartBinary(bin, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartBinary starts bin serving dir; the caller must call Stop.
func StartBinary(bin, dir string) (*Server, error) {
	var lastErr error
	for range 3 { // a free port can be taken between probing and binding
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Endpoint: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, log: &bytes.Buffer{}}
		s.cmd = exec.Command(bin, "server", "--quiet", "--address", s.Endpoint, "--console-address", "127.0.0.1:0", dir)
		s.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		// Its own process group, so Stop also ends anything it spawned.
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start minio: %w", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- s.cmd.Wait() }()
		if err := s.waitReady(exited, 60*time.Second); err != nil {
			lastErr = err
			s.kill()
			continue
		}
		go func() { <-exited }()
		return s, nil
	}
	return nil, lastErr
}

func (s *Server) waitReady(exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	url := "http://" + s.Endpoint + "/minio/health/ready"
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("minio exited before it was ready (%v): %s", err, s.log.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			// Only MinIO's answer counts: the port was free when it was
			// picked, and another test's server may have taken it since
			// (a deploy test's fake Pushgateway once answered this probe).
			if resp.StatusCode == http.StatusOK && resp.Header.Get("Server") == "MinIO" {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("minio at %s not ready after %s: %s", s.Endpoint, limit, s.log.String())
}

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Stop ends the server (SIGTERM, then SIGKILL after 5 s).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(s.cmd.Process.Pid, 0); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
}

// Env returns the environment entries that give memento this server's credentials.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey, "AWS_REGION=us-east-1"}
}

// URL is the repository URL of bucket/prefix on this server.
func (s *Server) URL(bucket, prefix string) string { return URL(s.Endpoint, bucket, prefix) }

// URL is the repository URL of bucket/prefix at endpoint.
func URL(endpoint, bucket, prefix string) string {
	u := "s3:http://" + endpoint + "/" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u
}

// Client returns a minio-go client for direct checks of what is stored.
func (s *Server) Client(tb testing.TB) *minio.Client {
	tb.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket with a random name and returns it.
func (s *Server) MakeBucket(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "test-" + hex.EncodeToString(b)
	if err := s.Client(tb).MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		tb.Fatalf("make bucket %s: %v", name, err)
	}
	return name
}

// Keys lists every key of a bucket below prefix, for assertions.
func (s *Server) Keys(tb testing.TB, bucket, prefix string) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	for oi := range s.Client(tb).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			tb.Fatalf("list %s/%s: %v", bucket, prefix, oi.Err)
		}
		out[strings.TrimPrefix(oi.Key, prefix)] = oi.Size
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// CPUSeconds is the user+system CPU time the server has used so far (from
// /proc/PID/stat), so that benchmarks can report what the server spent
// beside what the client spent: on one machine both share the cores.
func (s *Server) CPUSeconds() (float64, error) {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, fmt.Errorf("minio is not running")
	}
	return ProcessCPUSeconds(s.cmd.Process.Pid)
}

// ProcessCPUSeconds reads utime+stime of pid from /proc/PID/stat.
func ProcessCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var utime, stime float64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat utime: %w", pid, err)
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat stime: %w", pid, err)
	}
	return (utime + stime) / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100
