package hugepage

import (
	"os"
	"testing"
)

// TestParseMode: the selected mode is the bracketed word of the sysfs line,
// wherever it stands; a line without one is no mode.
func TestParseMode(t *testing.T) {
	for in, want := range map[string]string{
		"always [madvise] never\n": "madvise",
		"[always] madvise never\n": "always",
		"always madvise [never]\n": "never",
		"always madvise never\n":   "",
		"[]\n":                     "",
		"":                         "",
	} {
		if got := parseMode(in); got != want {
			t.Errorf("parseMode(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestModeReadsTheKernel: Mode is the kernel's current mode.
func TestModeReadsTheKernel(t *testing.T) {
	requireTHP(t)
	b, err := os.ReadFile(modeFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Mode(), parseMode(string(b)); got != want || got == "" {
		t.Fatalf("Mode() = %q, the kernel's file says %q", got, b)
	}
}
