// Package agent is `memento agent`: one long-running process per Engram data
// dir that does, on its own schedules, everything the operator scripts do one
// at a time (docs/operations/agent-contract.md): continuous WAL archiving of
// every space (walarchive.Watcher, new spaces picked up without a restart),
// backups on a cron schedule each followed by retention (GFS with a minimum
// kept), prune, the verification schedule (verify.PlanSchedule), WAL
// compaction above a segment threshold (walarchive.CompactWAL, archived
// segments only) and replication (replicate.ReplicateAll, bandwidth-limited).
// It serves /metrics, /healthz, /readyz and a status page (Handler).
//
// Its loop is modelled on Litestream's Replica.monitor: Run owns a session
// (the repository opened and a shared lock held, the watcher running, the
// scheduler dispatching jobs); a lost lock or an unreachable repository ends
// the session, and Run opens a new one with exponential backoff. Prune is a
// job of the session: its phase 1 (shared lock) runs beside archiving and
// the other jobs; for its short exclusive section the scheduler starts
// nothing new, waits for the running jobs and pauses the archiver
// (scheduler.pauseForPrune), and the session goes on afterwards. Jobs of one space never overlap; a failed job is logged, counted
// in the metrics and retried with bounded exponential backoff.
package agent
