package main

import (
	"time"

	"github.com/schollz/progressbar/v3"

	"memento/repo"
)

// showProgress draws a progress bar on a TTY until the returned stop is
// called. total may be -1 when unknown.
func (a *app) showProgress(desc string, total int64, p *repo.Progress) (stop func()) {
	if !a.isTTY() {
		return func() {}
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true), // MiB, as the summaries
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = bar.Set64(p.Bytes.Load())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		_ = bar.Clear()
	}
}
