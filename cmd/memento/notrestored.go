package main

import (
	"fmt"
	"strings"

	"memento/repo"
)

// notRestoredError is the error of a restore that completed but left out
// what the target could not take (restore.RestoreResult.NotRestored): a
// device node without root, an extended attribute the file
// system refuses. Exit code 1: everything else is in place and verified.
func notRestoredError(sn *repo.Snapshot, missing []string) error {
	const shown = 10
	list := missing
	more := ""
	if len(list) > shown {
		list, more = list[:shown], fmt.Sprintf("; and %d more", len(missing)-shown)
	}
	return fmt.Errorf("snapshot %s restored, but %s or attributes could not be recreated at the target: %s%s",
		sn.ShortID(), plural(len(missing), "entry"), strings.Join(list, "; "), more)
}
