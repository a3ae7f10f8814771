package agent

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/repotest"
)

// The status page, rendered by a real headless browser (Debian's chromium):
// the DOM has a section per space and an inline SVG time line of its
// recoverable ranges, and the screenshot was written. Under CI=true a
// missing chromium fails the test instead of skipping it.
func TestStatusPageInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (apt-get install -y chromium); CI=true requires it")
		}
		t.Skip("chromium not installed (apt-get install -y chromium)")
	}
	tr := repotest.New(t, repo.InitOptions{})
	dd := testData(t)
	stopSim := liveSim(t, dd, 200)
	cfg := testConfig(dd, tr.Dir)
	cfg.Schedules.Prune, cfg.Schedules.WALCompact = "", ""
	rn := start(t, Options{Config: cfg, Open: opener(tr)})
	rn.waitReady(t, true, 60*time.Second)
	// A range needs a snapshot and archived WAL after it.
	waitFor(t, 30*time.Second, "recoverable ranges on the status page", func() (bool, string) {
		_, body := rn.get(t, "/")
		return strings.Count(body, `class="range"`) >= 2, ""
	})
	stopSim()

	shot := filepath.Join(t.TempDir(), "status.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--disable-gpu", "--no-sandbox", "--user-data-dir="+t.TempDir(),
		"--window-size=1200,1600", "--screenshot="+shot, "--dump-dom", rn.srv.URL+"/")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	d := string(dom)
	for _, sp := range []string{"space-a", "space-b"} {
		if !strings.Contains(d, `data-space="`+sp+`"`) {
			t.Errorf("the rendered DOM has no section for %s", sp)
		}
	}
	if n := strings.Count(d, "<svg"); n < 2 {
		t.Errorf("the rendered DOM has %d <svg> time lines, want one per space", n)
	}
	if !strings.Contains(d, `class="range"`) {
		t.Error("no recoverable range drawn in the SVG time lines")
	}
	for _, want := range []string{"last backup", "RPO lag", "verification"} {
		if !strings.Contains(d, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, stderr.String())
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Errorf("the screenshot is not a PNG image (%d bytes)", len(png))
	}
}
