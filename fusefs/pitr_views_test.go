package fusefs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeViews records which views were recovered and closed.
type fakeViews struct {
	mu     sync.Mutex
	loads  map[string]int
	closed map[string]int
}

func newFakeViews() *fakeViews {
	return &fakeViews{loads: map[string]int{}, closed: map[string]int{}}
}

func (fv *fakeViews) load(key string) func() (*PointInTime, error) {
	return func() (*PointInTime, error) {
		fv.mu.Lock()
		fv.loads[key]++
		fv.mu.Unlock()
		return &PointInTime{Dir: "/views/" + key, Close: func() error {
			fv.mu.Lock()
			fv.closed[key]++
			fv.mu.Unlock()
			return nil
		}}, nil
	}
}

func (fv *fakeViews) counts(key string) (loads, closed int) {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	return fv.loads[key], fv.closed[key]
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestPITViewsEviction(t *testing.T) {
	ctx := context.Background()
	type step struct {
		key  string
		hold bool // keep the reference (an open file)
	}
	tests := []struct {
		name       string
		limit      int
		steps      []step
		wantClosed []string // closed at the end, before release of held views
		wantLen    int
	}{
		{"under the limit", 3, []step{{"a", false}, {"b", false}, {"c", false}}, nil, 3},
		{"least recently used first", 2, []step{{"a", false}, {"b", false}, {"a", false}, {"c", false}}, []string{"b"}, 2},
		{"a view in use stays", 1, []step{{"a", true}, {"b", false}, {"c", false}}, []string{"b", "c"}, 1},
		{"all in use exceed the limit", 1, []step{{"a", true}, {"b", true}, {"c", true}}, nil, 3},
		{"same key twice is one view", 1, []step{{"a", false}, {"a", false}}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fv := newFakeViews()
			v := newPITViews(tt.limit, quietLog())
			var held []*pitView
			for _, s := range tt.steps {
				pv, err := v.acquire(ctx, s.key, fv.load(s.key))
				if err != nil {
					t.Fatal(err)
				}
				if pv.pit.Dir != "/views/"+s.key {
					t.Fatalf("acquire %s: view of %s", s.key, pv.pit.Dir)
				}
				if s.hold {
					held = append(held, pv)
				} else {
					v.release(pv)
				}
			}
			for _, k := range []string{"a", "b", "c"} {
				_, closed := fv.counts(k)
				want := 0
				for _, w := range tt.wantClosed {
					if w == k {
						want = 1
					}
				}
				if closed != want {
					t.Errorf("view %s closed %d times, want %d", k, closed, want)
				}
			}
			if n := v.len(); n != tt.wantLen {
				t.Errorf("%d views materialized, want %d", n, tt.wantLen)
			}
			for _, pv := range held {
				v.release(pv)
			}
			if n := v.len(); n > tt.limit {
				t.Errorf("%d views after every release, limit %d", n, tt.limit)
			}
			v.closeAll()
			for _, k := range []string{"a", "b", "c"} {
				if loads, closed := fv.counts(k); loads != closed {
					t.Errorf("view %s: %d recoveries, %d closes after closeAll", k, loads, closed)
				}
			}
			if _, err := v.acquire(ctx, "d", fv.load("d")); !errors.Is(err, errUnmounted) {
				t.Errorf("acquire after closeAll: %v, want errUnmounted", err)
			}
		})
	}
}

func TestPITViewsRecoverOnce(t *testing.T) {
	v := newPITViews(4, quietLog())
	var loads atomic.Int32
	gate := make(chan struct{})
	load := func() (*PointInTime, error) {
		loads.Add(1)
		<-gate
		return &PointInTime{Dir: "/x"}, nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pv, err := v.acquire(context.Background(), "k", load)
			if err != nil {
				errs <- err
				return
			}
			v.release(pv)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("16 concurrent acquires recovered %d times, want 1", n)
	}
}

func TestPITViewsFailures(t *testing.T) {
	v := newPITViews(4, quietLog())
	why := errors.New("it is before the first backup")
	var loads int
	load := func() (*PointInTime, error) { loads++; return nil, why }
	_, err := v.acquire(context.Background(), "k", load)
	var recent *recentFailure
	if !errors.Is(err, why) || errors.As(err, &recent) {
		t.Fatalf("first failure: %v, want the recovery's own error", err)
	}
	_, err = v.acquire(context.Background(), "k", load)
	if !errors.Is(err, why) || !errors.As(err, &recent) || loads != 1 {
		t.Fatalf("second acquire: %v after %d recoveries, want a recent failure and no new recovery", err, loads)
	}
	v.mu.Lock()
	v.failed["k"] = failure{why, time.Now().Add(-failureTTL)}
	v.mu.Unlock()
	if _, err = v.acquire(context.Background(), "k", load); errors.As(err, &recent) || loads != 2 {
		t.Fatalf("acquire after the TTL: %v after %d recoveries, want a new recovery", err, loads)
	}
}

// A recovery still running at unmount is closed when it finishes.
func TestPITViewsCloseWhileRecovering(t *testing.T) {
	v := newPITViews(4, quietLog())
	fv := newFakeViews()
	gate := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := v.acquire(context.Background(), "k", func() (*PointInTime, error) {
			<-gate
			return fv.load("k")()
		})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	v.closeAll()
	close(gate)
	if err := <-done; !errors.Is(err, errUnmounted) {
		t.Errorf("recovery finished after unmount: %v, want errUnmounted", err)
	}
	if loads, closed := fv.counts("k"); loads != 1 || closed != 1 {
		t.Errorf("%d recoveries, %d closes, want 1 and 1", loads, closed)
	}
}
