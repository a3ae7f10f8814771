package keycache

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// keyring skips where the kernel keyring is not available (another OS, a
// container whose seccomp filter refuses keyctl), except in CI.
func keyringOrSkip(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the key cache is the Linux kernel keyring")
	}
	if _, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no kernel keyring in CI: %v", err)
		}
		t.Skipf("no kernel keyring: %v", err)
	}
}

func randomID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// An entry stored in the real session keyring reads back, is readable only
// by its possessor, carries the timeout, is replaced by a second Store and
// is gone after Forget.
func TestKeyringStoreLoadForget(t *testing.T) {
	keyringOrSkip(t)
	c, err := New(10 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id := randomID(t)
	t.Cleanup(func() { _ = c.Forget(id) })
	if b, err := c.Load(id); err != nil || b != nil {
		t.Fatalf("Load before Store = %q, %v", b, err)
	}
	if err := c.Store(id, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(id, []byte("second entry")); err != nil {
		t.Fatal(err)
	}
	b, err := c.Load(id)
	if err != nil || !bytes.Equal(b, []byte("second entry")) {
		t.Fatalf("Load = %q, %v; want the second entry", b, err)
	}
	kr, _ := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	kid, err := unix.KeyctlSearch(kr, "user", description(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, kid)
	if err != nil {
		t.Fatal(err)
	}
	// "type;uid;gid;perm;description"
	if f := strings.Split(desc, ";"); len(f) != 5 || f[0] != "user" || f[3] != "3f000000" || f[4] != "memento:"+id {
		t.Fatalf("key description %q: want a user key, possessor-only permissions 3f000000, named memento:%s", desc, id)
	}
	proc, err := os.ReadFile("/proc/keys")
	if err == nil && !bytes.Contains(proc, []byte("memento:"+id)) {
		t.Fatalf("/proc/keys does not list the entry:\n%s", proc)
	}
	for _, l := range strings.Split(string(proc), "\n") {
		if strings.Contains(l, "memento:"+id) {
			// Column 5 is the time left: "perm" would mean no timeout.
			if f := strings.Fields(l); len(f) < 5 || f[4] == "perm" {
				t.Fatalf("the entry has no timeout: %s", l)
			}
		}
	}
	if err := c.Forget(id); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Load(id); err != nil || b != nil {
		t.Fatalf("Load after Forget = %q, %v", b, err)
	}
	if err := c.Forget(id); err != nil {
		t.Fatalf("Forget of nothing: %v", err)
	}
}

// The kernel removes an entry when its timeout expires.
func TestKeyringTimeout(t *testing.T) {
	keyringOrSkip(t)
	c, err := New(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	id := randomID(t)
	t.Cleanup(func() { _ = c.Forget(id) })
	if err := c.Store(id, []byte("short-lived")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, err := c.Load(id)
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry outlived its 1 s timeout by two minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestNewBounds(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, MaxTTL + time.Second} {
		if _, err := New(d); err == nil {
			t.Errorf("New(%s) accepted", d)
		}
	}
	if _, err := New(MaxTTL); err != nil {
		t.Error(err)
	}
}
