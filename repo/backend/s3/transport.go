package s3

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"time"
)

// errStalled is what a connection returns when it made no progress for the
// I/O timeout; it is a net.Error with Timeout() true, which minio-go and the
// retry loop treat as transient.
var errStalled = stalledError{}

type stalledError struct{}

func (stalledError) Error() string   { return "connection stalled: no data moved within the I/O timeout" }
func (stalledError) Timeout() bool   { return true }
func (stalledError) Temporary() bool { return true }

// newTransport returns an HTTP transport with a bounded number of connections
// and per-I/O deadlines. A whole-request timeout would either cut off a large
// upload on a slow link or wait far too long for a dead one; a deadline that
// every successful read or write pushes forward catches a stall (a proxy that
// swallows packets, a half-open connection) after timeout, whatever the size.
func newTransport(conns int, timeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: min(timeout, 30*time.Second), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &deadlineConn{Conn: c, timeout: timeout}, nil
		},
		MaxConnsPerHost:     conns,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		// Idle connections are closed before their read deadline would fire,
		// so a request never starts on a connection about to time out.
		IdleConnTimeout:       timeout / 2,
		TLSHandshakeTimeout:   min(timeout, 30*time.Second),
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0, // covered by the connection deadline
		// Packs are encrypted and compressed; gzip would only cost CPU.
		DisableCompression: true,
		WriteBufferSize:    256 << 10,
		ReadBufferSize:     256 << 10,
	}
}

// deadlineConn moves its deadline forward on every read and write. Both
// directions share one deadline: while a request body is being written the
// transport's background read is pending, and must not time out merely
// because the server has nothing to say until the upload is complete.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Read(p)
	return n, stalled(err)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(p)
	return n, stalled(err)
}

func stalled(err error) error {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return errStalled
	}
	return err
}
