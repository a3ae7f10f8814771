// Package maintenance keeps a repository lean and sound: forget by retention
// policy, prune unreferenced data and WAL, check and repair.
//
// Forget removes snapshot manifests (by ID, or what a RetentionPolicy does
// not keep); Prune then deletes the packs and WAL archive records nothing
// needs any more, in an order that leaves a valid repository at any
// interruption. Check finds what is damaged or missing and, with repair,
// makes the repository consistent again.
package maintenance
