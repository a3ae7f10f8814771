package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeE2EBinary builds the real binary, generates a data dir with it,
// serves it, reads the address from "listening on ADDR", checks each
// space's digest against the binary's truth output, and stops it with
// SIGTERM (exit 0, ready file removed).
func TestServeE2EBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "engram-sim")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "data")
	if out, err := exec.Command(bin, "generate", "--dir", dir, "--size", "2MiB", "--spaces", "2", "--dim", "32").CombinedOutput(); err != nil {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	ready := filepath.Join(tmp, "ready.json")
	cmd := exec.Command(bin, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--ready-file", ready)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var addr string
	select {
	case l := <-lines:
		var ok bool
		if addr, ok = strings.CutPrefix(l, "listening on "); !ok {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no \"listening on\" line within 10 s")
	}
	base := "http://" + addr
	code, h := waitLoaded(t, base)
	if code != http.StatusOK || h.Status != "healthy" || h.Spaces != 2 {
		t.Fatalf("health %d %+v", code, h)
	}
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "healthy: 2 spaces") {
			t.Errorf("second line %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Error("no \"healthy\" line")
	}
	for _, id := range []string{"space-a", "space-b"} {
		out, err := exec.Command(bin, "truth", "--dir", dir, "--space", id).Output()
		if err != nil {
			t.Fatalf("truth %s: %v", id, err)
		}
		var tl, got truthLine
		if err := json.Unmarshal(out, &tl); err != nil || tl.Timeline != 1 {
			t.Fatalf("truth %s: %s: %v", id, out, err)
		}
		tl.timelineTag = timelineTag{} // serve's digest has no timeline fields
		tl.DigestV2 = ""               // nor the version-2 digest
		if code, body := getJSON(t, base+"/api/v1/spaces/"+id+"/digest", &got); code != 200 || got != tl {
			t.Errorf("digest of %s: %d %s, truth %s", id, code, body, out)
		}
	}
	b, err := os.ReadFile(ready)
	if err != nil || !strings.Contains(string(b), `"listen":"`+addr+`"`) {
		t.Errorf("ready file %q: %v", b, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() { werr <- cmd.Wait() }()
	select {
	case err := <-werr:
		exited = true
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGTERM")
	}
	if _, err := os.Stat(ready); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file after SIGTERM: %v", err)
	}
}
