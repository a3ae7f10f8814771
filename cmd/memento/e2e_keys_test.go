package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type keyJSON struct {
	ID       string `json:"id"`
	Current  bool   `json:"current"`
	Host     string `json:"host"`
	Username string `json:"username"`
	KDF      string `json:"kdf"`
	Params   struct {
		Time      uint32 `json:"time"`
		MemoryKiB uint32 `json:"memory_kib"`
		Threads   uint8  `json:"threads"`
	} `json:"params"`
}

func (e *env) keys() []keyJSON {
	e.t.Helper()
	var ks []keyJSON
	if err := json.Unmarshal([]byte(e.mustRun("key", "list", "--json")), &ks); err != nil {
		e.t.Fatal(err)
	}
	return ks
}

func writePassword(t *testing.T, dir, name, pw string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Key management through the real binary: a new repository's one key has
// argon2id at least at OWASP's floor; key add gives a second password; the
// key in use and the last key are refused for removal (exit 2); key passwd
// replaces the key in use; unknown and malformed IDs exit 7 and 2.
func TestKeyCommands(t *testing.T) {
	e := newEnv(t)
	d := t.TempDir()
	ks := e.keys()
	if len(ks) != 1 || !ks[0].Current || ks[0].KDF != "argon2id" || ks[0].Params.MemoryKiB < 19<<10 ||
		ks[0].Params.Time < 2 || ks[0].Params.Threads != 1 || ks[0].Host == "" {
		t.Fatalf("keys of a new repository: %+v", ks)
	}
	first := ks[0].ID
	e.wantFail(exitUsage, "it is the key in use", "key", "remove", first[:8])
	e.wantFail(exitUsage, "password file", "key", "add", "--new-password-file", filepath.Join(d, "none"))
	out := e.mustRun("key", "add", "--new-password-file", writePassword(t, d, "second", "second password"))
	if !strings.Contains(out, "added key ") || !strings.Contains(out, "argon2id t=") {
		t.Fatalf("key add said %q", out)
	}
	if ks = e.keys(); len(ks) != 2 {
		t.Fatalf("keys after add: %+v", ks)
	}
	second := *e
	second.password = "second password"
	ks = second.keys()
	var secondID string
	for _, k := range ks {
		if k.Current {
			secondID = k.ID
		}
	}
	if secondID == "" || secondID == first {
		t.Fatalf("opened with the second password, the current key is %q: %+v", secondID, ks)
	}
	out = second.mustRun("key", "list")
	if !strings.Contains(out, "* "+secondID[:8]) || !strings.Contains(out, "  "+first[:8]) {
		t.Fatalf("key list does not mark the key in use:\n%s", out)
	}
	second.wantFail(exitUsage, `key "zz": invalid argument`, "key", "remove", "zz")
	second.wantFail(exitNotFound, "not found", "key", "remove", strings.Repeat("0", 8))
	second.mustRun("key", "remove", first[:8])
	e.wantFail(exitWrongPassword, "wrong password", "snapshots")
	second.wantFail(exitUsage, "refusing to remove the key", "key", "remove", secondID[:8]) // in use and last
	second.mustRun("key", "passwd", "--new-password-file", writePassword(t, d, "third", "third password"))
	second.wantFail(exitWrongPassword, "wrong password", "snapshots")
	third := *e
	third.password = "third password"
	ks = third.keys()
	if len(ks) != 1 || !ks[0].Current || ks[0].ID == secondID {
		t.Fatalf("keys after passwd: %+v", ks)
	}
}

// The opt-in key cache through the real binary and the real kernel keyring:
// with --key-cache the second command opens the repository without reading
// a key file; another password gets exit 4; MEMENTO_KEY_CACHE works the
// same; key forget-cache removes the entry; without the option the cache
// is not consulted.
func TestKeyCacheEndToEnd(t *testing.T) {
	if _, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no kernel keyring in CI: %v", err)
		}
		t.Skipf("no kernel keyring: %v", err)
	}
	e := newEnv(t)
	t.Cleanup(func() { e.run("key", "forget-cache") })
	e.mustRun("snapshots", "--key-cache", "10m")
	keys := filepath.Join(e.repo, "keys")
	if err := os.Rename(keys, keys+".away"); err != nil {
		t.Fatal(err)
	}
	// No key file: only the cached key can open the repository.
	e.mustRun("snapshots", "--key-cache", "10m")
	cached := *e
	cached.extra = append(cached.extra, "MEMENTO_KEY_CACHE=10m")
	cached.mustRun("snapshots")
	wrong := cached
	wrong.password = "not the password"
	wrong.wantFail(exitCorrupt, "no key files", "snapshots") // no cached key for it: the key files are read
	e.wantFail(exitCorrupt, "no key files", "snapshots")     // without the option the cache is not used
	soon := *e
	soon.extra = append(soon.extra, "MEMENTO_KEY_CACHE=soon")
	soon.wantFail(exitUsage, "MEMENTO_KEY_CACHE=soon", "snapshots")
	e.mustRun("key", "forget-cache")
	cached.wantFail(exitCorrupt, "no key files", "snapshots")
	if err := os.Rename(keys+".away", keys); err != nil {
		t.Fatal(err)
	}
	wrong.wantFail(exitWrongPassword, "wrong password", "snapshots")
}
