package local

import (
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backend/backendtest"
)

func newBackend(t *testing.T) *Backend {
	t.Helper()
	b, err := Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() }) // its open packs and its ring (an eventfd the GC would close later)
	return b
}

func randBytes(seed uint64, n int) []byte { return backendtest.RandBytes(seed, n) }

func readAll(t *testing.T, b *Backend, name string, off, length int64) []byte {
	t.Helper()
	return backendtest.ReadAll(t, b, name, off, length)
}

func listMap(t *testing.T, b *Backend, dir string) map[string]int64 {
	t.Helper()
	return backendtest.ListMap(t, b, dir)
}

// TestContract runs the contract every backend passes, looking at the
// directory itself for what List hides.
func TestContract(t *testing.T) {
	backendtest.Run(t, backendtest.Config{
		Name:           "local backend",
		NotExist:       "no such file or directory",
		ErrInvalidName: ErrInvalidName,
		Stored: func(t *testing.T, b repo.Backend) []string {
			return allFiles(t, b.Location())
		},
		// Litter that List must hide: a temp file left by a killed writer,
		// an empty directory, a symlink.
		Litter: func(t *testing.T, b repo.Backend) {
			root := b.Location()
			if err := os.WriteFile(filepath.Join(root, "data", "ab", ".tmp-12345"), []byte("partial"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(root, "data", "ee"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/passwd", filepath.Join(root, "data", "cd", "link")); err != nil {
				t.Fatal(err)
			}
		},
		CheckWritten: func(t *testing.T, b repo.Backend, name string) {
			fi, err := os.Stat(filepath.Join(b.Location(), filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != fileMode {
				t.Fatalf("mode %v, want %v", fi.Mode().Perm(), fileMode)
			}
		},
	}, func(t *testing.T) repo.Backend { return newBackend(t) })
}
