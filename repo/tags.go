package repo

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// OriginalTagPrefix starts the tag that records, in a snapshot rewritten by
// `memento tag`, the ID of the snapshot it replaced (the first one, when a
// snapshot is retagged again): repository-format.md, "Original tag". A tag,
// not a manifest field, for the reason the identity tag is one: older
// binaries re-encode the manifest to check its signature.
const OriginalTagPrefix = "original:"

// MaxTagLen is the longest tag a user may give, in bytes.
const MaxTagLen = 128

// ValidTag reports why t cannot be a tag a user gives (backup --tag, tag
// --add/--set), or nil. Every tag a user gives is a name under the mount's
// tags/ directory and one word in `snapshots` output and in --tag filters:
// 1 to MaxTagLen bytes of UTF-8 without '/', ',' (filters read "a,b" as two
// tags), whitespace or control characters, not "." or "..", and none of the
// prefixes only memento writes (damage marks, identity, timeline,
// original). Every command that takes user tags checks them here, so they
// agree on what a tag is.
func ValidTag(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("empty tag")
	case len(t) > MaxTagLen:
		return fmt.Errorf("tag %.20q...: %d bytes (at most %d)", t, len(t), MaxTagLen)
	case !utf8.ValidString(t):
		return fmt.Errorf("tag %q is not valid UTF-8", t)
	case t == "." || t == "..":
		return fmt.Errorf("tag %q is not a directory name", t)
	}
	if i := strings.IndexFunc(t, func(r rune) bool {
		return r == '/' || r == ',' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
	}); i >= 0 {
		r, _ := utf8.DecodeRuneInString(t[i:])
		return fmt.Errorf("tag %q contains %q (not allowed: '/', ',', whitespace, control characters)", t, r)
	}
	switch {
	case strings.HasPrefix(t, DamageTagPrefix):
		return fmt.Errorf("tag %q: tags starting with %q are damage marks, written only by backup", t, DamageTagPrefix)
	case ReservedTag(t):
		return fmt.Errorf("tag %q: tags starting with %q, %q or %q are written only by memento", t, IdentityTagPrefix, TimelineTagPrefix, OriginalTagPrefix)
	}
	return nil
}

// SystemTag reports whether a tag is one memento writes and keeps: damage
// marks, identity, timeline and original tags. `tag` never removes them.
func SystemTag(t string) bool { return ReservedTag(t) }

// UserTags returns the tags of a manifest that users gave, without the
// ones memento writes (SystemTag).
func (m *Manifest) UserTags() []string {
	out := []string{}
	for _, t := range m.Tags {
		if !SystemTag(t) {
			out = append(out, t)
		}
	}
	return out
}

// Original returns the ID of the snapshot this one replaced when its tags
// were changed ("" for a snapshot written by a backup).
func (m *Manifest) Original() string {
	for _, t := range m.Tags {
		if id, ok := strings.CutPrefix(t, OriginalTagPrefix); ok {
			return id
		}
	}
	return ""
}

// TagEdit is a change of a snapshot's user tags: Set replaces them all
// (when not nil), then Add adds and Remove removes.
type TagEdit struct {
	Set    []string
	Add    []string
	Remove []string
}

// Apply returns the tags of a manifest after the edit, the system tags
// (SystemTag) kept where they were, and whether anything changed. Every
// tag given must pass ValidTag.
func (e TagEdit) Apply(tags []string) ([]string, bool, error) {
	for _, list := range [][]string{e.Set, e.Add, e.Remove} {
		for _, t := range list {
			if err := ValidTag(t); err != nil {
				return nil, false, err
			}
		}
	}
	var sys, user []string
	for _, t := range tags {
		if SystemTag(t) {
			sys = append(sys, t)
		} else {
			user = append(user, t)
		}
	}
	if e.Set != nil {
		user = nil
		for _, t := range e.Set {
			if !slices.Contains(user, t) {
				user = append(user, t)
			}
		}
	}
	for _, t := range e.Add {
		if !slices.Contains(user, t) {
			user = append(user, t)
		}
	}
	user = slices.DeleteFunc(user, func(t string) bool { return slices.Contains(e.Remove, t) })
	out := append(user, sys...)
	return out, !slices.Equal(out, tags), nil
}
