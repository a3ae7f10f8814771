package runbook

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

const doc = "# Guide\n\n" +
	"<!-- t:setup step:make-dir -->\n```sh\nmkdir -p \"$WORK/a\"\necho made \"$WORK/a\"\n```\n\n" +
	"```yaml\nnot: shell\n```\n\n" +
	"```sh\necho unmarked\n```\n\n" +
	"<!-- t:not-run needs systemd -->\n```sh\nsystemctl start x\n```\n\n" +
	"<!-- t:setup step:fail-five -->\n```sh\necho before\nexit 5\necho never\n```\n" +
	"<!-- t:setup step:pipefail -->\n```sh\nfalse | cat\necho never\n```\n" +
	"<!-- t:use step:prelude -->\n```sh\ngreet /etc/memento\n```\n"

func TestParse(t *testing.T) {
	d, err := Parse("guide.md", []byte(doc), "t")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Names(), " "); got != "setup/make-dir setup/fail-five setup/pipefail use/prelude" {
		t.Errorf("names %q", got)
	}
	b, _ := d.Block("setup/make-dir")
	if b.Line != 3 || b.Body != "mkdir -p \"$WORK/a\"\necho made \"$WORK/a\"\n" {
		t.Errorf("block %+v", b)
	}
	if len(d.Skipped) != 1 || d.Skipped[0].Reason != "needs systemd" || d.Skipped[0].Line != 17 {
		t.Errorf("skipped %+v", d.Skipped)
	}
	if len(d.Unmarked) != 1 || d.Unmarked[0] != 13 {
		t.Errorf("unmarked %v", d.Unmarked)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"<!-- t:a step:b -->\ntext\n", "g.md:1: marker <!-- t:a step:b --> not followed by a ```sh block"},
		{"<!-- t:a step:b -->\n```sh\necho\n", "g.md:2: unterminated ``` block"},
		{"<!-- t:a step:b -->\n```sh\n```\n<!-- t:a step:b -->\n```sh\n```\n", "g.md:4: block a/b twice (first at line 1)"},
		{"x\n<!-- t:A step:b -->\n```sh\n```\n", "g.md:2: malformed marker"},
		{"<!-- t:not-run -->\n```sh\n```\n", "g.md:1: malformed marker"},
		{"<!-- t:a step:b -->\n```bash\n```\n", "not followed by a ```sh block"},
	} {
		_, err := Parse("g.md", []byte(c.doc), "t")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q): %v, want %q", c.doc, err, c.want)
		}
	}
	if _, err := Parse("g.md", nil, "T x"); err == nil {
		t.Error("invalid tag accepted")
	}
	// Another document's markers and other comments are ignored.
	d, err := Parse("g.md", []byte("<!-- drill-results:begin -->\n<!-- x:a step:b -->\n```sh\n```\n"), "t")
	if err != nil || len(d.Blocks) != 0 || len(d.Unmarked) != 1 {
		t.Errorf("foreign markers: %+v %v", d, err)
	}
}

func TestRun(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is required")
	}
	d, err := Parse("guide.md", []byte(doc), "t")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	r := &Runner{Doc: d, Env: []string{"WORK=" + work, "PATH=/usr/bin:/bin"}, Dir: work,
		Prelude: "greet() { echo \"hello $1\"; }\n", Replace: []string{"/etc/memento", work + "/etc"}}
	ctx := context.Background()
	out, err := r.Run(ctx, "setup/make-dir")
	if err != nil || out != "made "+work+"/a\n" {
		t.Fatalf("make-dir: %q %v", out, err)
	}
	out, err = r.Run(ctx, "setup/fail-five")
	var e *Error
	if !errors.As(err, &e) || e.ExitCode != 5 || out != "before\n" || e.Output != "before\n" {
		t.Fatalf("fail-five: %q %v", out, err)
	}
	if !strings.HasPrefix(err.Error(), "guide.md:22: block setup/fail-five: exit status 5\n") {
		t.Errorf("error text %q", err.Error())
	}
	if out, err = r.Run(ctx, "setup/pipefail"); !errors.As(err, &e) || e.ExitCode != 1 || out != "" {
		t.Errorf("pipefail: %q %v", out, err)
	}
	if out, err = r.Run(ctx, "use/prelude"); err != nil || out != "hello "+work+"/etc\n" {
		t.Errorf("prelude and replace: %q %v", out, err)
	}
	if _, err = r.Run(ctx, "no/such"); err == nil || err.Error() != "guide.md: no block no/such" {
		t.Errorf("missing block: %v", err)
	}
}

// The disaster-recovery runbook's markers (drilled by drill/) parse with
// the tag "drill": the drill can use this package as it is.
func TestDisasterRecoveryRunbookParses(t *testing.T) {
	d, err := Load("../../docs/operations/disaster-recovery.md", "drill")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Blocks) == 0 {
		t.Fatal("no drill blocks")
	}
	if _, ok := d.Block("lib/functions"); !ok {
		t.Errorf("no lib/functions block in %v", d.Names())
	}
}
