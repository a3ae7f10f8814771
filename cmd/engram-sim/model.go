package main

import (
	"math/rand/v2"
	"strings"
	"time"

	"memento/walreplay"
)

// model produces the content of one space's writes: which operation comes
// next (per the mix), new ids for stores, existing ids for updates and
// deletes, and the records themselves. It depends only on its RNG and the
// set of live ids, so the same seed gives the same entries regardless of
// timing or of how many goroutines run.
type model struct {
	r   *rand.Rand
	mix mix
	dim int

	live []string       // live ids, in no particular order
	pos  map[string]int // id -> index in live

	emb     []float32
	text    func(*rand.Rand, *strings.Builder) string // the records' content (the profile's)
	sb      strings.Builder
	payload []byte
	// rec is the record of the last store or update; its Embedding aliases
	// the model's buffer and is overwritten by the next call.
	rec walreplay.Record
}

func newModel(r *rand.Rand, m mix, dim int) *model {
	return &model{r: r, mix: m, dim: dim, pos: map[string]int{}, emb: make([]float32, dim), text: sentence}
}

// addLive registers an existing id (from a replayed WAL).
func (m *model) addLive(id string) {
	if _, ok := m.pos[id]; ok {
		return
	}
	m.pos[id] = len(m.live)
	m.live = append(m.live, id)
}

func (m *model) removeLive(id string) {
	i, ok := m.pos[id]
	if !ok {
		return
	}
	last := m.live[len(m.live)-1]
	m.live[i] = last
	m.pos[last] = i
	m.live = m.live[:len(m.live)-1]
	delete(m.pos, id)
}

// next fills e's Type and Payload (aliasing the model's buffer) with the
// next operation and returns it. Updates and deletes on an empty space
// become stores.
func (m *model) next(e *walreplay.Entry) opKind {
	op := m.mix.pick(m.r.Float64())
	if (op == opUpdate || op == opDelete) && len(m.live) == 0 {
		op = opStore
	}
	switch op {
	case opStore:
		id := newMemoryID(m.r)
		for _, taken := m.pos[id]; taken; _, taken = m.pos[id] {
			id = newMemoryID(m.r) // a 64-bit collision: practically never
		}
		m.fillRecord(id)
		m.addLive(id)
		e.Type = walreplay.EpisodeStore
	case opUpdate:
		id := m.live[m.r.IntN(len(m.live))]
		m.fillRecord(id)
		e.Type = walreplay.MemoryUpdate
	case opDelete:
		id := m.live[m.r.IntN(len(m.live))]
		m.removeLive(id)
		m.rec = walreplay.Record{ID: id}
		m.payload = walreplay.AppendDelete(m.payload[:0], id)
		e.Type = walreplay.MemoryDelete
	case opMarker:
		m.payload = m.payload[:0]
		e.Type = walreplay.Marker
	}
	e.Flags = 0
	e.Payload = m.payload
	return op
}

func (m *model) fillRecord(id string) {
	fillNormal(m.r, m.emb)
	m.rec = walreplay.Record{ID: id, Confidence: confidence(m.r), Embedding: m.emb, Content: m.text(m.r, &m.sb)}
	m.payload = walreplay.AppendRecord(m.payload[:0], &m.rec)
}

// synthClock steps from a start by random amounts with mean meanStep: the
// timestamps of generate and mutate, which depend on the seed only.
type synthClock struct {
	r        *rand.Rand
	last     int64
	meanStep int64
	sameTS   float64
	started  bool
}

func (c *synthClock) next() int64 {
	if c.started && c.r.Float64() < c.sameTS {
		return c.last
	}
	c.started = true
	c.last += 1 + c.r.Int64N(2*max(c.meanStep, 1))
	return c.last
}

// wallClock uses the real time, clamped to be non-decreasing. When the log
// being continued has timestamps ahead of the wall clock (a generated dir
// dated in the future), it shifts by a fixed offset instead of stalling.
type wallClock struct {
	r      *rand.Rand
	last   int64
	offset int64
	sameTS float64
	now    func() time.Time
}

func newWallClock(r *rand.Rand, last int64, sameTS float64) *wallClock {
	c := &wallClock{r: r, last: last, sameTS: sameTS, now: time.Now}
	if n := c.now().UnixNano(); last >= n {
		c.offset = last - n + int64(time.Millisecond)
	}
	return c
}

func (c *wallClock) next() int64 {
	if c.last != 0 && c.r.Float64() < c.sameTS {
		return c.last
	}
	t := c.now().UnixNano() + c.offset
	if t < c.last {
		t = c.last
	}
	c.last = t
	return t
}
