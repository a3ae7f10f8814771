package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestTextLogLines: every log line is "memento: level: msg k=v", one line,
// values quoted as slog quotes them; the final error line has no level word.
func TestTextLogLines(t *testing.T) {
	var b bytes.Buffer
	var lv slog.LevelVar
	lv.Set(slog.LevelDebug)
	l := newLogger(&b, logText, &lv)
	l.Warn("password file is accessible by its group", "file", "/etc/pw", "mode", "0640")
	l.Error("archive run failed", "space", "space-a", "err", errors.New("sequences 3..9 are missing\nsecond line"))
	l.With("space", "b").WithGroup("g").Info("archived", "n", 3, "d", 1500*time.Millisecond, "empty", "")
	l.Debug("detail", slog.Group("s3", "retries", 2))
	a := &app{stderr: &b, logFormat: logText}
	a.errorLine("no repository", exitNoRepository)
	want := `memento: warning: password file is accessible by its group file=/etc/pw mode=0640
memento: error: archive run failed space=space-a err="sequences 3..9 are missing\nsecond line"
memento: info: archived space=b g.n=3 g.d=1.5s g.empty=""
memento: debug: detail s3.retries=2
memento: no repository
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	lv.Set(slog.LevelWarn)
	l.Info("hidden")
	if b.Len() != 0 {
		t.Errorf("info at warn level: %q", b.String())
	}
}

// TestJSONLogLines: --log-format json writes one object a line, the final
// error with its exit code.
func TestJSONLogLines(t *testing.T) {
	var b bytes.Buffer
	a := &app{stderr: &b, logFormat: logJSON}
	newLogger(&b, logJSON, slog.LevelWarn).Warn("audit record does not verify", "err", "bad seal")
	a.errorLine("no repository", exitNoRepository)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%q", b.String())
	}
	var w, e map[string]any
	if json.Unmarshal([]byte(lines[0]), &w) != nil || json.Unmarshal([]byte(lines[1]), &e) != nil {
		t.Fatalf("not JSON: %q", b.String())
	}
	if w["level"] != "WARN" || w["msg"] != "audit record does not verify" || w["err"] != "bad seal" || w["time"] == nil {
		t.Errorf("warning %v", w)
	}
	if e["level"] != "ERROR" || e["msg"] != "no repository" || e["exit_code"] != float64(exitNoRepository) {
		t.Errorf("error %v", e)
	}
}

func TestLsMode(t *testing.T) {
	for m, want := range map[fs.FileMode]string{
		0o644:                  "-rw-r--r--",
		fs.ModeDir | 0o755:     "drwxr-xr-x",
		fs.ModeSymlink | 0o777: "lrwxrwxrwx",
		fs.ModeSetuid | 0o755:  "-rwsr-xr-x",
		fs.ModeSetuid | 0o644:  "-rwSr--r--",
		fs.ModeSetgid | 0o750:  "-rwxr-s---",
		fs.ModeSetgid | 0o740:  "-rwxr-S---",
		fs.ModeDir | fs.ModeSticky | 0o1777&^0o1000: "drwxrwxrwt",
		fs.ModeDir | fs.ModeSticky | 0o776:          "drwxrwxrwT",
		fs.ModeNamedPipe | 0o600:                    "prw-------",
		fs.ModeSocket | 0o600:                       "srw-------",
		fs.ModeDevice | fs.ModeCharDevice | 0o666:   "crw-rw-rw-",
		fs.ModeDevice | 0o660:                       "brw-rw----",
		0:                                           "----------",
	} {
		if got := lsMode(m); got != want {
			t.Errorf("lsMode(%v) = %s, want %s", m, got, want)
		}
	}
}
