package repo_test

// Importing repo/restore sets repo.RestoreBridge, through which the tests of
// package repo restore (bridge_restore.go).
import _ "memento/repo/restore"
