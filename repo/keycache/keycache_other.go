//go:build !linux

package keycache

// Load finds nothing without a kernel keyring.
func (c *Cache) Load(repoID string) ([]byte, error) { return nil, ErrUnsupported }

// Store fails without a kernel keyring.
func (c *Cache) Store(repoID string, entry []byte) error { return ErrUnsupported }

// Forget fails without a kernel keyring.
func (c *Cache) Forget(repoID string) error { return ErrUnsupported }
