// Package replicate copies a repository's files one-way to another backend,
// verified and bandwidth-limited.
//
// It needs no password and never decodes a file: see replicate.go for the
// copy order that keeps an interrupted run harmless.
package replicate
