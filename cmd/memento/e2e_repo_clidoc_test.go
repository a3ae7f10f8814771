package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var updateCLIDoc = flag.Bool("update-cli-doc", false, "rewrite the generated reference in docs/cli.md")

const (
	cliDocPath  = "../../docs/cli.md"
	cliDocBegin = "<!-- BEGIN GENERATED REFERENCE: go test ./cmd/memento -run TestCLIDocIsCurrent -update-cli-doc -->\n"
	cliDocEnd   = "<!-- END GENERATED REFERENCE -->\n"
)

// TestCLIDocIsCurrent keeps docs/cli.md in step with the cobra definitions:
// the command reference in it is generated from them, so every command and
// every flag is documented with its real type, default and help text.
func TestCLIDocIsCurrent(t *testing.T) {
	for _, v := range []string{"MEMENTO_REPOSITORY", "MEMENTO_PASSWORD_FILE", "MEMENTO_CACHE_DIR", "MEMENTO_LOG_FORMAT"} {
		t.Setenv(v, "") // flag defaults must not depend on the environment
	}
	root := (&app{stdout: io.Discard, stderr: io.Discard}).rootCommand()
	gen := renderCLIReference(root)
	doc, err := os.ReadFile(cliDocPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, cliDocBegin), strings.Index(s, cliDocEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated-reference markers", cliDocPath)
	}
	current := s[i+len(cliDocBegin) : j]
	if current == gen {
		return
	}
	if *updateCLIDoc {
		if err := os.WriteFile(cliDocPath, []byte(s[:i+len(cliDocBegin)]+gen+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/cli.md is out of date with the cobra definitions (a command or flag was added or changed);\n" +
		"regenerate with: go test ./cmd/memento -run TestCLIDocIsCurrent -update-cli-doc")
}

// renderCLIReference writes the global flags and every command (depth first,
// in cobra's name order) as markdown.
func renderCLIReference(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString("\n### Global flags\n\nAccepted by every command.\n\n")
	flagTable(&b, root.PersistentFlags())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			fmt.Fprintf(&b, "\n### %s\n\n%s.\n\n```\n%s\n```\n", sub.CommandPath(), strings.TrimSuffix(sub.Short, "."), sub.UseLine())
			if sub.Long != "" {
				fmt.Fprintf(&b, "\n```text\n%s\n```\n", strings.TrimRight(sub.Long, "\n"))
			}
			if sub.Example != "" {
				fmt.Fprintf(&b, "\nExamples:\n\n```\n%s\n```\n", strings.TrimRight(sub.Example, "\n"))
			}
			if sub.HasAvailableLocalFlags() {
				b.WriteString("\n")
				flagTable(&b, sub.LocalNonPersistentFlags())
				if pf := sub.PersistentFlags(); pf.HasAvailableFlags() && sub != root {
					flagTable(&b, pf)
				}
			}
			walk(sub)
		}
	}
	walk(root)
	b.WriteString("\n")
	return b.String()
}

func flagTable(b *strings.Builder, fs *pflag.FlagSet) {
	var rows []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		name := "`--" + f.Name + "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		def := f.DefValue
		switch def {
		case "", "false", "0", "[]":
			def = ""
		default:
			def = "`" + def + "`"
		}
		typ := f.Value.Type()
		if typ == "bool" {
			typ = ""
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s |", name, typ, def, strings.ReplaceAll(f.Usage, "|", `\|`)))
	})
	if len(rows) == 0 {
		return
	}
	b.WriteString("| flag | value | default | meaning |\n|---|---|---|---|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n")
}
