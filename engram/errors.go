package engram

import "errors"

// Sentinel errors of this package. Errors it returns wrap one of them where it
// applies, so callers use errors.Is; each says when it is returned.
var (
	// ErrNoSpaces is returned (wrapped) by ListSpaces for a data dir without a
	// spaces/ directory or without any space in it.
	ErrNoSpaces = errors.New("no spaces")
	// ErrNoIdentity is returned (wrapped) by ReadIdentity when the data dir has
	// no .memento/identity.json.
	ErrNoIdentity = errors.New("no database identity")
)
