package miniotest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is what the proxy does to one connection.
type Fault struct {
	// Refuse closes the connection at once (the client sees a reset).
	Refuse bool
	// ResetAfter resets the connection after this many client->server
	// bytes (0: never): a connection cut in the middle of an upload.
	ResetAfter int64
	// StallAfter stops forwarding in both directions after this many
	// client->server bytes (0: never), for StallFor (0: until closed): a
	// black-holed connection, the case only timeouts can detect.
	StallAfter int64
	StallFor   time.Duration
	// CorruptAt flips the lowest bit of the client->server byte at this
	// offset (0: never; headers come first, so pick an offset inside the
	// body): bytes damaged in transit, which only a checksum catches.
	CorruptAt int64
	// BytesPerSecond limits the client->server rate (0: none): a slow
	// uplink. Latency delays every chunk forwarded in either direction
	// (0: none): a long link.
	BytesPerSecond int64
	Latency        time.Duration
}

// Proxy forwards TCP connections on 127.0.0.1 to a target, injecting faults.
type Proxy struct {
	Addr   string // 127.0.0.1:port to connect to instead of the target
	target string
	l      net.Listener
	n      atomic.Int64 // connections accepted
	faults atomic.Int64 // connections faulted
	sent   atomic.Int64 // client->server bytes forwarded
	// partitioned black-holes every connection, open and new, until Heal.
	partitioned atomic.Bool

	mu    sync.Mutex
	plan  func(conn int64) Fault
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target and closes it when the test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.Close)
	return p
}

// SetPlan decides the fault of each new connection (numbered from 1); nil
// passes everything through. Open connections are reset, so that the plan
// applies to every request from now on, not only to those that happen to
// need a new connection.
func (p *Proxy) SetPlan(plan func(conn int64) Fault) {
	p.mu.Lock()
	p.plan = plan
	p.mu.Unlock()
	p.CutAll()
}

// Connections is how many connections the proxy accepted.
func (p *Proxy) Connections() int64 { return p.n.Load() }

// Faulted is how many connections got a fault.
func (p *Proxy) Faulted() int64 { return p.faults.Load() }

// CutAll resets every open connection; new ones are still accepted.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	for c := range p.conns {
		reset(c)
	}
	p.mu.Unlock()
}

// Sent is how many client->server bytes the proxy forwarded.
func (p *Proxy) Sent() int64 { return p.sent.Load() }

// Partition black-holes the network: open connections stop forwarding in
// both directions (what is sent is dropped, nothing comes back) and new ones
// are accepted and get no answer, until Heal. Only timeouts detect it.
func (p *Proxy) Partition() { p.partitioned.Store(true) }

// Heal ends a partition: the black-holed connections are reset and new
// ones are forwarded again.
func (p *Proxy) Heal() {
	p.partitioned.Store(false)
	p.CutAll()
}

// Close stops accepting and cuts every open connection.
func (p *Proxy) Close() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		n := p.n.Add(1)
		p.mu.Lock()
		var f Fault
		if p.plan != nil {
			f = p.plan(n)
		}
		p.conns[c] = true
		p.mu.Unlock()
		if f != (Fault{}) {
			p.faults.Add(1)
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c, f)
		}()
	}
}

func (p *Proxy) forget(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
	p.mu.Unlock()
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close sends RST, not FIN
	}
	c.Close()
}

func (p *Proxy) handle(c net.Conn, f Fault) {
	if f.Refuse {
		reset(c)
		p.forget(c)
		return
	}
	if p.partitioned.Load() {
		blackhole(c)
		p.forget(c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(c)
		p.forget(c)
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	defer p.forget(c, up)

	stalled := make(chan struct{})
	var stallOnce sync.Once
	stall := func() { stallOnce.Do(func() { close(stalled) }) }
	var wg sync.WaitGroup
	wg.Add(2)
	upDone := make(chan struct{})
	// client -> server, where upload faults are counted
	go func() {
		defer wg.Done()
		defer close(upDone)
		var sent int64
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			chunk := buf[:n]
			if p.partitioned.Load() {
				blackhole(c)
				up.Close()
				return
			}
			if f.BytesPerSecond > 0 && n > 0 {
				time.Sleep(time.Duration(int64(n) * int64(time.Second) / f.BytesPerSecond))
			}
			if f.Latency > 0 && n > 0 {
				time.Sleep(f.Latency)
			}
			if f.CorruptAt > 0 && sent <= f.CorruptAt && f.CorruptAt < sent+int64(n) {
				chunk[f.CorruptAt-sent] ^= 1
			}
			if f.ResetAfter > 0 && sent+int64(n) >= f.ResetAfter {
				k := f.ResetAfter - sent
				_, _ = up.Write(chunk[:k])
				reset(c)
				reset(up)
				return
			}
			if f.StallAfter > 0 && sent+int64(n) >= f.StallAfter {
				k := f.StallAfter - sent
				_, _ = up.Write(chunk[:k])
				sent += k
				chunk = chunk[k:]
				stall()
				if !waitStall(f.StallFor, c) {
					return
				}
				f.StallAfter = 0
			}
			if len(chunk) > 0 {
				if _, werr := up.Write(chunk); werr != nil {
					c.Close()
					return
				}
				sent += int64(len(chunk))
				p.sent.Add(int64(len(chunk)))
			}
			if err != nil {
				if tc, ok := up.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
		}
	}()
	// server -> client
	go func() {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if p.partitioned.Load() {
				<-upDone // the other direction black-holes until the client closes
				return
			}
			if f.Latency > 0 && n > 0 {
				time.Sleep(f.Latency)
			}
			select {
			case <-stalled:
				if f.StallFor == 0 {
					<-upDone
					return
				}
				time.Sleep(f.StallFor)
			default:
			}
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					up.Close()
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					c.Close()
				} else if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
		}
	}()
	wg.Wait()
}

// waitStall holds a stalled connection for d (0: until it is closed) and
// reports whether forwarding may go on.
func waitStall(d time.Duration, c net.Conn) bool {
	if d == 0 {
		// Until the client gives up and closes: detect by reading nothing.
		one := make([]byte, 1)
		for {
			_ = c.SetReadDeadline(time.Now().Add(time.Hour))
			if _, err := c.Read(one); err != nil {
				return false
			}
		}
	}
	time.Sleep(d)
	return true
}

// blackhole reads and drops what the client sends until it closes the
// connection (or Heal resets it).
func blackhole(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}
