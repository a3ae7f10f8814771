// Package verify proves that backups restore: levels L1-L4 over snapshots
// and archived WAL, the verification schedule, random subsets, and the
// audit verdicts.
//
// L1 checks a snapshot's manifest, trees, index and packs without reading
// data; L2 reads and checks every chunk (or a rotating subset of the packs)
// and the archived WAL that extends the snapshot's point-in-time range; L3
// adds the Engram layout of a space snapshot; L4 restores it into a
// temporary directory and replays its WAL to the state digest recorded at
// backup time. Verdicts are recorded in the repository's audit trail
// (repo.AuditRecord), from which VerifiedLevels, NextSubset and PlanSchedule
// read what was proven and what is due.
package verify
