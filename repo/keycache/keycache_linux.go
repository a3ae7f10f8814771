package keycache

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// perm: the possessor may view, read, write, search and set attributes
// (keyctl_set_timeout); nobody else, not even other processes of the same
// user outside the session, may do anything (keyctl_setperm(2)).
const perm = 0x3f000000

// maxEntry bounds what Load reads (an entry is about 400 bytes).
const maxEntry = 64 << 10

// keyring is the session keyring, or the user-session keyring for a
// process that has none (a service without pam_keyinit): asking for it
// without "create" attaches the latter, where adding a key to "the session
// keyring" would create a new one that ends with this process.
func keyring() (int, error) {
	id, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	if err != nil {
		return 0, fmt.Errorf("kernel keyring: %w", err)
	}
	return id, nil
}

// Load returns the repository's entry, or nil when there is none.
func (c *Cache) Load(repoID string) ([]byte, error) {
	kr, err := keyring()
	if err != nil {
		return nil, err
	}
	id, err := unix.KeyctlSearch(kr, "user", description(repoID), 0)
	if err != nil {
		if errors.Is(err, unix.ENOKEY) || errors.Is(err, unix.EKEYEXPIRED) || errors.Is(err, unix.EKEYREVOKED) {
			return nil, nil
		}
		return nil, fmt.Errorf("kernel keyring: search: %w", err)
	}
	buf := make([]byte, maxEntry)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil {
		if errors.Is(err, unix.EKEYEXPIRED) || errors.Is(err, unix.EKEYREVOKED) || errors.Is(err, unix.ENOKEY) {
			return nil, nil
		}
		return nil, fmt.Errorf("kernel keyring: read: %w", err)
	}
	if n > len(buf) {
		return nil, fmt.Errorf("kernel keyring: entry of %d bytes", n)
	}
	return buf[:n], nil
}

// Store adds or replaces the repository's entry and (re)starts its timeout.
func (c *Cache) Store(repoID string, entry []byte) error {
	kr, err := keyring()
	if err != nil {
		return err
	}
	id, err := unix.AddKey("user", description(repoID), entry, kr)
	if err != nil {
		return fmt.Errorf("kernel keyring: add: %w", err)
	}
	if err := unix.KeyctlSetperm(id, perm); err != nil {
		c.invalidate(id)
		return fmt.Errorf("kernel keyring: setperm: %w", err)
	}
	secs := int(c.TTL.Seconds())
	if _, err := unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, id, secs, 0, 0); err != nil {
		c.invalidate(id)
		return fmt.Errorf("kernel keyring: set timeout: %w", err)
	}
	return nil
}

// Forget removes the repository's entry; none is not an error.
func (c *Cache) Forget(repoID string) error {
	kr, err := keyring()
	if err != nil {
		return err
	}
	id, err := unix.KeyctlSearch(kr, "user", description(repoID), 0)
	if err != nil {
		if errors.Is(err, unix.ENOKEY) || errors.Is(err, unix.EKEYEXPIRED) || errors.Is(err, unix.EKEYREVOKED) {
			return nil
		}
		return fmt.Errorf("kernel keyring: search: %w", err)
	}
	if err := c.invalidate(id); err != nil {
		return fmt.Errorf("kernel keyring: invalidate: %w", err)
	}
	return nil
}

func (c *Cache) invalidate(id int) error {
	_, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
	return err
}
