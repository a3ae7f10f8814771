package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"memento/repo/backend/backendtest"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"memento/repo/backend/s3/miniotest"
)

// headerProxy is an HTTP reverse proxy in front of MinIO that records the
// headers of every PUT and answers 501 NotImplemented, as a server without
// trailing checksums would, to the requests refuse picks.
type headerProxy struct {
	addr    string
	mu      sync.Mutex
	puts    []http.Header
	refused int
}

func newHeaderProxy(t *testing.T, target string, refuse func(*http.Request) bool) *headerProxy {
	t.Helper()
	hp := &headerProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&url.URL{Scheme: "http", Host: target})
		r.Out.Host = r.In.Host // the signature covers the Host header
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			hp.mu.Lock()
			hp.puts = append(hp.puts, r.Header.Clone())
			hp.mu.Unlock()
			if refuse != nil && refuse(r) {
				hp.mu.Lock()
				hp.refused++
				hp.mu.Unlock()
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusNotImplemented)
				_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`))
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	hp.addr = l.Addr().String()
	return hp
}

func (hp *headerProxy) seen() ([]http.Header, int) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return append([]http.Header(nil), hp.puts...), hp.refused
}

// wire is what one PUT of an upload carries.
type wire struct {
	sha256Hdr string // X-Amz-Content-Sha256
	trailer   string // X-Amz-Trailer
	crcHdr    bool   // X-Amz-Checksum-Crc32c sent as a header
	md5       bool   // Content-Md5 sent
}

func wireOf(h http.Header) wire {
	return wire{h.Get("X-Amz-Content-Sha256"), strings.ToLower(h.Get("X-Amz-Trailer")),
		h.Get("X-Amz-Checksum-Crc32c") != "", h.Get("Content-Md5") != ""}
}

// Every upload checksum mode stores the bytes, in one PUT from memory, in
// one PUT from a stream, and in parts, and puts on the wire what its
// documentation says.
func TestUploadChecksums(t *testing.T) {
	srv := minioServer(t)
	single := backendtest.RandBytes(21, 1<<20+3)
	multi := backendtest.RandBytes(22, 2*minPartSize+777)
	var (
		signed   = wire{sha256Hdr: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}
		unsigned = wire{sha256Hdr: "UNSIGNED-PAYLOAD"}
		crcHdr   = wire{sha256Hdr: "UNSIGNED-PAYLOAD", crcHdr: true}
		trailer  = wire{sha256Hdr: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", trailer: "x-amz-checksum-crc32c"}
		md5      = wire{sha256Hdr: "UNSIGNED-PAYLOAD", md5: true}
	)
	tests := []struct {
		mode                   UploadChecksum
		memory, stream, inPart wire
	}{
		{ChecksumAuto, crcHdr, trailer, trailer},
		{ChecksumCRC32C, crcHdr, trailer, trailer},
		{ChecksumMD5, md5, md5, md5},
		{ChecksumSHA256, signed, signed, signed},
		{ChecksumNone, unsigned, unsigned, unsigned},
	}
	for _, tc := range tests {
		t.Run("mode="+string(tc.mode), func(t *testing.T) {
			hp := newHeaderProxy(t, srv.Endpoint, nil)
			cfg, _ := testConfig(t, hp.addr)
			cfg.Checksum = tc.mode
			cfg.PartSize, cfg.SinglePutLimit, cfg.PartThreads = minPartSize, minPartSize, 2
			b := openTest(t, cfg)
			ctx := context.Background()
			for i, c := range []struct {
				data   []byte
				stream bool
				want   wire
			}{{single, false, tc.memory}, {single, true, tc.stream}, {multi, false, tc.inPart}} {
				var r io.Reader = bytes.NewReader(c.data)
				if c.stream {
					r = io.NewSectionReader(bytes.NewReader(c.data), 0, int64(len(c.data)))
				}
				before, _ := hp.seen()
				name := "data/0" + string(rune('0'+i)) + "/" + hex64(byte('0'+i))
				if err := b.Write(ctx, name, r, int64(len(c.data))); err != nil {
					t.Fatalf("write %d bytes: %v", len(c.data), err)
				}
				if got := backendtest.ReadAll(t, b, name, 0, -1); !bytes.Equal(got, c.data) {
					t.Fatalf("%d bytes read back differently", len(c.data))
				}
				puts, _ := hp.seen()
				puts = puts[len(before):]
				if want := 1 + 2*(len(c.data)/len(multi)); len(puts) < want {
					t.Fatalf("write %d: %d PUT requests, want %d or more", i, len(puts), want)
				}
				for j, h := range puts {
					if got := wireOf(h); got != c.want {
						t.Errorf("write %d (stream %v), PUT %d: %+v, want %+v", i, c.stream, j, got, c.want)
					}
				}
			}
		})
	}
}

// A server that refuses trailing checksums costs ChecksumAuto one refused
// request, after which it uploads the old way; an explicit ChecksumCRC32C
// fails with the server's error.
func TestUploadChecksumFallback(t *testing.T) {
	srv := minioServer(t)
	refuse := func(r *http.Request) bool { return r.Header.Get("X-Amz-Trailer") != "" }
	data := backendtest.RandBytes(23, 200<<10)
	// Not in memory, as in replication: the CRC goes in a trailer.
	stream := func() io.Reader { return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))) }
	ctx := context.Background()

	hp := newHeaderProxy(t, srv.Endpoint, refuse)
	cfg, _ := testConfig(t, hp.addr)
	b := openTest(t, cfg)
	for i := range 3 {
		name := "index/" + hex64(byte('a'+i))
		if err := b.Write(ctx, name, stream(), int64(len(data))); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if got := backendtest.ReadAll(t, b, name, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("write %d read back differently", i)
		}
	}
	puts, refused := hp.seen()
	if refused != 1 || len(puts) != 4 {
		t.Fatalf("%d PUTs, %d refused; want 4 PUTs (1 refused, then 3 without a trailer)", len(puts), refused)
	}
	if got := puts[3].Get("X-Amz-Content-Sha256"); got != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" {
		t.Fatalf("after the fallback: X-Amz-Content-Sha256 %q, want the signed payload", got)
	}

	hp2 := newHeaderProxy(t, srv.Endpoint, refuse)
	cfg2, _ := testConfig(t, hp2.addr)
	cfg2.Checksum = ChecksumCRC32C
	err := openTest(t, cfg2).Write(ctx, "index/"+hex64('e'), stream(), int64(len(data)))
	if err == nil || !strings.Contains(err.Error(), "NotImplemented") || !strings.Contains(err.Error(), "write index/") {
		t.Fatalf("explicit crc32c on a server without trailers: %v", err)
	}
}

// A bit flipped on the wire is caught by every checksum mode and the upload
// is sent again; with ChecksumNone it is stored as it arrived (which is why
// none is not the default: later reads would find a damaged file).
func TestUploadCorruptedInTransit(t *testing.T) {
	srv := minioServer(t)
	data := backendtest.RandBytes(24, 2<<20)
	for _, tc := range []struct {
		mode   UploadChecksum
		stream bool // CRC32C in a trailer rather than a header
	}{{ChecksumAuto, false}, {ChecksumAuto, true}, {ChecksumMD5, false}, {ChecksumSHA256, false}, {ChecksumNone, false}} {
		mode := tc.mode
		t.Run(fmt.Sprintf("mode=%s/stream=%v", mode, tc.stream), func(t *testing.T) {
			p := miniotest.NewProxy(t, srv.Endpoint)
			cfg, _ := testConfig(t, p.Addr)
			cfg.Checksum = mode
			b := openTest(t, cfg)
			base := p.Connections()
			p.SetPlan(func(n int64) miniotest.Fault {
				if n == base+1 {
					return miniotest.Fault{CorruptAt: 1<<20 + 4321}
				}
				return miniotest.Fault{}
			})
			name := "data/cc/" + hex64('c')
			var r io.Reader = bytes.NewReader(data)
			if tc.stream {
				r = io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data)))
			}
			if err := b.Write(context.Background(), name, r, int64(len(data))); err != nil {
				t.Fatalf("write: %v", err)
			}
			if p.Faulted() != 1 {
				t.Fatalf("%d connections faulted, want 1", p.Faulted())
			}
			p.SetPlan(nil)
			same := bytes.Equal(backendtest.ReadAll(t, b, name, 0, -1), data)
			if want := mode != ChecksumNone; same != want {
				t.Fatalf("stored bytes equal to the source: %v, want %v", same, want)
			}
		})
	}
}

// Only the server's refusal of a request worth retrying without a checksum
// triggers the fallback.
func TestRefusedByServer(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"not implemented", context.Background(), minio.ErrorResponse{Code: "NotImplemented", StatusCode: 501}, true},
		{"bad request", context.Background(), minio.ErrorResponse{Code: "InvalidRequest", StatusCode: 400}, true},
		{"unknown 400", context.Background(), minio.ErrorResponse{StatusCode: 400}, true},
		{"access denied", context.Background(), minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, false},
		{"no bucket", context.Background(), minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, false},
		{"server error", context.Background(), minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, false},
		{"network", context.Background(), io.ErrUnexpectedEOF, false},
		{"short source", context.Background(), errNoRetry{errShortSource}, false},
		{"cancelled", cancelled, minio.ErrorResponse{Code: "NotImplemented", StatusCode: 501}, false},
	}
	for _, tc := range tests {
		if got := refusedByServer(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: refusedByServer = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A request refused for want of permission by credentials the server
// accepted (read-only credentials writing a lock) is fs.ErrPermission too, so
// the repository runs a reading command without a lock; wrong credentials
// are not.
func TestAccessDeniedIsPermission(t *testing.T) {
	b := &Backend{cfg: Config{Endpoint: "127.0.0.1:9", Bucket: "b"}}
	denied := b.wrapErr("write", "locks/ab", minio.ErrorResponse{Code: "AccessDenied", Message: "Access Denied.", StatusCode: 403})
	if !errors.Is(denied, ErrAccessDenied) || !errors.Is(denied, fs.ErrPermission) {
		t.Errorf("%v: want ErrAccessDenied and fs.ErrPermission", denied)
	}
	if want := `s3 backend: write locks/ab (bucket "b", key "locks/ab" at 127.0.0.1:9): access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): AccessDenied: Access Denied.`; denied.Error() != want {
		t.Errorf("message %q, want %q", denied, want)
	}
	wrongKey := b.wrapErr("write", "locks/ab", minio.ErrorResponse{Code: "InvalidAccessKeyId", StatusCode: 403})
	if !errors.Is(wrongKey, ErrAccessDenied) || errors.Is(wrongKey, fs.ErrPermission) {
		t.Errorf("%v: want ErrAccessDenied only", wrongKey)
	}
}
