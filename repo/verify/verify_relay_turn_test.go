package verify

import (
	"context"
	"testing"
)

// A snapshot waiting for its turn to stream does not let the one after the
// next walk: only its turn does, so however many snapshots a relay has, at
// most two wait walked and planned ahead of the one streaming.
func TestRelayWalksAheadOnlyOnItsTurn(t *testing.T) {
	walked := 0
	turn := make(chan struct{})
	rl := &relay{stream: turn, walked: func() { walked++ }}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rl.startStream(ctx); err == nil || walked != 0 {
		t.Fatalf("before its turn: %v, the next-but-one let walk %d times", err, walked)
	}
	close(turn)
	if err := rl.startStream(context.Background()); err != nil || walked != 1 {
		t.Fatalf("on its turn: %v, the next-but-one let walk %d times", err, walked)
	}
}
