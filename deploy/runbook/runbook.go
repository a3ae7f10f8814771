// Package runbook extracts the marked shell blocks of an operations document and runs them, so the documents the operators follow are the ones the tests execute.
//
// A block is marked by an HTML comment on the line right before its
// opening fence:
//
//	<!-- TAG:GROUP step:STEP -->
//	```sh
//	...
//	```
//
// (TAG is the document's: "drill" for the disaster-recovery runbook,
// "guide" for the operations guide; GROUP is [a-z]+, STEP [a-z-]+; the
// block's name is GROUP/STEP). A ```sh block that is not to be run says so,
// with the reason:
//
//	<!-- TAG:not-run REASON -->
//
// Any other comment starting with "<!-- TAG:" is an error, as are a marker
// not followed by a ```sh fence, an unterminated block and a name used twice.
package runbook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// A Block is one marked ```sh block.
type Block struct {
	Name string // GROUP/STEP
	Line int    // 1-based line of its marker
	Body string // the lines between the fences, each ending in "\n"
}

// A Skipped block is a ```sh block marked not to be run.
type Skipped struct {
	Line   int // 1-based line of its marker
	Reason string
}

// A Doc is the shell blocks of one document.
type Doc struct {
	Path     string
	Blocks   []Block   // marked blocks, in document order
	Skipped  []Skipped // blocks marked not-run
	Unmarked []int     // 1-based lines of the ```sh fences without a marker
}

// Load reads and parses the document at path.
func Load(path, tag string) (*Doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b, tag)
}

// Parse extracts the blocks of a document (path names it in errors).
func Parse(path string, doc []byte, tag string) (*Doc, error) {
	if !regexp.MustCompile(`^[a-z][a-z0-9-]*$`).MatchString(tag) {
		return nil, fmt.Errorf("runbook: invalid tag %q", tag)
	}
	prefix := "<!-- " + tag + ":"
	marker := regexp.MustCompile(`^<!-- ` + tag + `:([a-z]+) step:([a-z-]+) -->$`)
	notRun := regexp.MustCompile(`^<!-- ` + tag + `:not-run (\S.*\S|\S) -->$`)
	d := &Doc{Path: path}
	seen := map[string]int{}
	lines := strings.Split(strings.ReplaceAll(string(doc), "\r\n", "\n"), "\n")
	// fenceEnd returns the index of the closing fence of the block opening
	// at lines[i].
	fenceEnd := func(i int) (int, error) {
		for j := i + 1; j < len(lines); j++ {
			if strings.HasPrefix(lines[j], "```") {
				return j, nil
			}
		}
		return 0, fmt.Errorf("%s:%d: unterminated ``` block", path, i+1)
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.HasPrefix(line, prefix):
			m, n := marker.FindStringSubmatch(line), notRun.FindStringSubmatch(line)
			if m == nil && n == nil {
				return nil, fmt.Errorf("%s:%d: malformed marker %q (want %sGROUP step:STEP --> or %snot-run REASON -->)", path, i+1, line, prefix, prefix)
			}
			if i+1 >= len(lines) || lines[i+1] != "```sh" {
				return nil, fmt.Errorf("%s:%d: marker %s not followed by a ```sh block", path, i+1, line)
			}
			end, err := fenceEnd(i + 1)
			if err != nil {
				return nil, err
			}
			if lines[end] != "```" {
				return nil, fmt.Errorf("%s:%d: block closed by %q, not ```", path, end+1, lines[end])
			}
			if n != nil {
				d.Skipped = append(d.Skipped, Skipped{Line: i + 1, Reason: n[1]})
				i = end
				continue
			}
			name := m[1] + "/" + m[2]
			if prev, dup := seen[name]; dup {
				return nil, fmt.Errorf("%s:%d: block %s twice (first at line %d)", path, i+1, name, prev)
			}
			seen[name] = i + 1
			var body strings.Builder
			for _, l := range lines[i+2 : end] {
				body.WriteString(l + "\n")
			}
			d.Blocks = append(d.Blocks, Block{Name: name, Line: i + 1, Body: body.String()})
			i = end
		case strings.HasPrefix(line, "```"):
			end, err := fenceEnd(i)
			if err != nil {
				return nil, err
			}
			if line == "```sh" {
				d.Unmarked = append(d.Unmarked, i+1)
			}
			i = end
		}
	}
	return d, nil
}

// Block returns the block named name.
func (d *Doc) Block(name string) (Block, bool) {
	for _, b := range d.Blocks {
		if b.Name == name {
			return b, true
		}
	}
	return Block{}, false
}

// Names is the blocks' names in document order.
func (d *Doc) Names() []string {
	names := make([]string, len(d.Blocks))
	for i, b := range d.Blocks {
		names[i] = b.Name
	}
	return names
}

// A Runner runs blocks with bash.
type Runner struct {
	Doc     *Doc
	Env     []string // the whole environment of the shell
	Dir     string   // working directory ("": the current one)
	Prelude string   // run before every block (after "set -euo pipefail"), e.g. another block's shell functions
	// Replace rewrites a block's text before it runs (old, new pairs, as
	// strings.NewReplacer), e.g. a documented path by a test's directory.
	Replace []string
}

// An Error is a block that exited non-zero.
type Error struct {
	Path     string
	Block    Block
	ExitCode int // -1: killed by a signal or not started
	Output   string
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: block %s: %v\n%s--- output:\n%s", e.Path, e.Block.Line, e.Block.Name, e.Err, e.Block.Body, e.Output)
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs the block named name with bash under "set -euo pipefail" and
// returns its output (stdout and stderr interleaved); a non-zero exit is an
// *Error carrying the exit code and the output.
func (r *Runner) Run(ctx context.Context, name string) (string, error) {
	b, ok := r.Doc.Block(name)
	if !ok {
		return "", fmt.Errorf("%s: no block %s", r.Doc.Path, name)
	}
	return r.RunBlock(ctx, b)
}

// RunBlock runs b (see Run).
func (r *Runner) RunBlock(ctx context.Context, b Block) (string, error) {
	body := b.Body
	if len(r.Replace) > 0 {
		body = strings.NewReplacer(r.Replace...).Replace(body)
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+r.Prelude+body)
	cmd.Env, cmd.Dir = r.Env, r.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	e := &Error{Path: r.Doc.Path, Block: b, ExitCode: -1, Output: out.String(), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		e.ExitCode = ee.ExitCode()
	}
	return out.String(), e
}
