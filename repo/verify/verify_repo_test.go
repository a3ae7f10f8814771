package verify

import (
	"context"
	"errors"
	"testing"

	"memento/repo"
)

// unlistableRepo is a manifestRepo whose backend cannot list data/; any
// other call panics (nil embedded interface), which proves NewVerifier asks
// for nothing more once the listing fails.
type unlistableRepo struct {
	manifestRepo
	be listFailingBackend
}

func (f *unlistableRepo) Backend() repo.Backend { return f.be }

type listFailingBackend struct {
	repo.Backend
	err error
}

func (b listFailingBackend) List(ctx context.Context, dir string, fn func(name string, size int64) error) error {
	if dir != repo.DirData {
		return errors.New("unexpected listing of " + dir)
	}
	return b.err
}

// TestNewVerifierListErrorWithoutRepository runs NewVerifier on a fake
// Repository: a failure to list the packs (which NewVerifier starts in the
// background) is what Manifest gets when it needs the listing, wrapped, and
// the local index is never consulted.
func TestNewVerifierListErrorWithoutRepository(t *testing.T) {
	want := errors.New("connection reset")
	v, err := NewVerifier(context.Background(), &unlistableRepo{be: listFailingBackend{err: want}}, VerifyOptions{Level: L1})
	if err != nil {
		t.Fatal(err)
	}
	err = v.packsListed(context.Background())
	if !errors.Is(err, want) || err.Error() != "list packs: connection reset" {
		t.Fatalf("packsListed = %v; want list packs: %v", err, want)
	}
}
