package main

import (
	"fmt"
	"log/slog"
	"time"

	"memento/cmd/memento/instant"
)

// The instants the commands take (restore --at, wal replay --at, log
// --since, a mount's at/<T>/ names) are read by package instant, in the
// zone of --tz for the forms without one, and the times they print are in
// that zone with its offset (instant.FormatSeconds, instant.Format), a form
// every one of those flags accepts back.

// zone is the --tz zone (default the process's local zone, $TZ).
func (a *app) zone() *time.Location {
	if a.loc == nil {
		return time.Local
	}
	return a.loc
}

// setZone reads --tz (an IANA zone name, "UTC" or "Local").
func (a *app) setZone() error {
	if a.tz == "" {
		return nil
	}
	loc, err := time.LoadLocation(a.tz)
	if err != nil {
		return usagef("--tz %q: not a time zone; give an IANA name such as Europe/Berlin, America/New_York, UTC or Local", a.tz)
	}
	a.loc = loc
	return nil
}

// parseInstant reads flag's value s in any form package instant accepts; a
// bad one is a usage error (exit 2) naming the flag and the accepted forms.
// A relative or zone-less input is echoed on stderr as the instant it
// means (not with -q or --json).
func (a *app) parseInstant(flag, s string, bareDurationAgo bool) (time.Time, error) {
	t, err := instant.Parse(s, instant.Options{Loc: a.zone(), BareDurationAgo: bareDurationAgo})
	if err != nil {
		return time.Time{}, usagef("%s: %v", flag, err)
	}
	if abs, err := instant.ParseAbsolute(s, time.UTC); err != nil || !abs.Equal(t) {
		a.notef("%s %q is %s", flag, s, instant.Format(t, a.zone()))
	}
	return t, nil
}

// parseMountInstant is how a mount reads the names under spaces/<space>/at/:
// absolute forms only, since a name must mean the same instant each time.
func (a *app) parseMountInstant(name string) (int64, error) {
	t, err := instant.ParseAbsolute(name, a.zone())
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}

// when prints t for tables (snapshots, log, ls, forget): RFC 3339 to the
// second in the --tz zone, with its offset.
func (a *app) when(t time.Time) string { return instant.FormatSeconds(t, a.zone()) }

// notef logs a note on stderr in the --log-format format (info level,
// whatever the level of a.log) unless --quiet or --json: how input was
// read. Answers go to stdout (answerf).
func (a *app) notef(format string, args ...any) {
	if a.quiet || a.jsonOut {
		return
	}
	newLogger(a.stderr, a.logFormat, slog.LevelInfo).Info(fmt.Sprintf(format, args...))
}

// answerf writes a command's answer (the listing it was asked for) to
// stdout unless --json: --quiet drops chatter, not the answer.
func (a *app) answerf(format string, args ...any) {
	if a.jsonOut {
		return
	}
	fmt.Fprintf(a.stdout, format, args...)
}
