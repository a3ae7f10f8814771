package main

import (
	"fmt"
	"strconv"
	"strings"

	"memento/engram"
)

// parseSize parses a byte size such as "1G", "64MiB", "20MB", "4096".
// K, M, G, T and KiB, MiB, GiB, TiB are binary (1G = 1 GiB, matching how the
// benchmarks speak of "a 1 GiB data dir"); KB, MB, GB, TB are decimal.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	var mult float64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	case "t", "tib":
		mult = 1 << 40
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (use K, M, G, KiB, MiB, GiB, KB, MB, GB)", s, t[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	v := f * mult
	if v < 0 || v > 1<<50 {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return int64(v), nil
}

// opKind is what one simulated write does to a space.
type opKind int

const (
	opStore opKind = iota
	opUpdate
	opDelete
	opMarker
	numOps
)

var opNames = [numOps]string{"store", "update", "delete", "marker"}

// mix holds the relative weights of the operations, normalised to sum 1.
type mix [numOps]float64

// parseMix parses "store=60,update=30,delete=10[,marker=1]". Weights are
// relative; at least one must be positive, and store must be positive
// because updates and deletes need existing ids.
func parseMix(s string) (mix, error) {
	var m mix
	seen := [numOps]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("mix %q: %q is not name=weight", s, part)
		}
		k := -1
		for i, n := range opNames {
			if strings.TrimSpace(name) == n {
				k = i
			}
		}
		if k < 0 {
			return m, fmt.Errorf("mix %q: unknown operation %q (want store, update, delete, marker)", s, name)
		}
		if seen[k] {
			return m, fmt.Errorf("mix %q: %s given twice", s, name)
		}
		seen[k] = true
		w, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || w < 0 || w > 1e9 {
			return m, fmt.Errorf("mix %q: bad weight %q for %s", s, val, name)
		}
		m[k] = w
	}
	var sum float64
	for _, w := range m {
		sum += w
	}
	if m[opStore] <= 0 {
		return m, fmt.Errorf("mix %q: store weight must be positive", s)
	}
	for i := range m {
		m[i] /= sum
	}
	return m, nil
}

func (m mix) String() string {
	parts := make([]string, 0, numOps)
	for i, w := range m {
		if w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", opNames[i], w*100))
		}
	}
	return strings.Join(parts, ",")
}

// pick maps a uniform u in [0,1) to an operation.
func (m mix) pick(u float64) opKind {
	for i := range numOps - 1 {
		if u < m[i] {
			return opKind(i)
		}
		u -= m[i]
	}
	return numOps - 1
}

// validateSpaceID enforces the Engram space id syntax [a-z0-9_-]{1,64}
// (engram.ValidSpaceID), with the simulator's message.
func validateSpaceID(id string) error {
	if engram.ValidSpaceID(id) != nil {
		return fmt.Errorf("space id %q: must match %s", id, engram.SpaceIDPattern)
	}
	return nil
}

// defaultSpaceIDs names n spaces space-a, space-b, ..., space-z, space-aa, ...
func defaultSpaceIDs(n int) []string {
	ids := make([]string, n)
	for i := range n {
		name := ""
		for k := i; ; k = k/26 - 1 {
			name = string(rune('a'+k%26)) + name
			if k < 26 {
				break
			}
		}
		ids[i] = "space-" + name
	}
	return ids
}

// spaceIDsFromFlags returns --space-names if given (validated, distinct),
// else n default names.
func spaceIDsFromFlags(names string, n int) ([]string, error) {
	if names == "" {
		if n < 1 || n > 10000 {
			return nil, usageErrorf("--spaces %d: want 1..10000", n)
		}
		return defaultSpaceIDs(n), nil
	}
	ids := strings.Split(names, ",")
	seen := map[string]bool{}
	for i, id := range ids {
		id = strings.TrimSpace(id)
		ids[i] = id
		if err := validateSpaceID(id); err != nil {
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		if seen[id] {
			return nil, usageErrorf("space id %q given twice", id)
		}
		seen[id] = true
	}
	return ids, nil
}
