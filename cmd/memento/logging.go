package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
)

// One log format for everything memento writes to stderr that is not a
// progress bar: warnings, errors, wal watch's runs and the final error line.
//
//	--log-format text (default): one line each, "memento: " first, so that
//	  `grep '^memento: '` finds them all:
//	    memento: warning: password file is accessible by its group ... file=/etc/pw mode=0640
//	    memento: error: archive run failed; retrying ... space=space-a err="..."
//	    memento: info: archived space=space-a segments=1 bytes=4.0KiB last_seq=17 seconds=0.002
//	    memento: <the error that ended the command>   (the only line without a level word)
//	--log-format json: one JSON object a line (slog's JSON handler): time
//	  (RFC 3339, nanoseconds), level, msg and the attributes; the final error
//	  line is {"time":...,"level":"ERROR","msg":"<error>","exit_code":N}.
//
// Levels: warnings and errors are always written; info (wal watch's runs)
// for wal watch unless -q; debug with -v.

const (
	logText = "text"
	logJSON = "json"
)

// addOutputFlags registers the global flags of this file and times.go.
func (a *app) addOutputFlags(pf *pflag.FlagSet) {
	def := os.Getenv("MEMENTO_LOG_FORMAT")
	if def == "" {
		def = logText
	}
	pf.StringVar(&a.logFormat, "log-format", def, "format of the log lines and the final error on stderr: text or json (env MEMENTO_LOG_FORMAT)")
	pf.StringVar(&a.tz, "tz", "", "time zone of times printed and of times given without one, an IANA name such as Europe/Berlin (default: the local zone, $TZ)")
}

// setupLog builds a.log from --log-format, -v and -q.
func (a *app) setupLog() error {
	if a.logFormat != logText && a.logFormat != logJSON {
		f := a.logFormat
		a.logFormat = logText
		return usagef("--log-format %q: give text or json", f)
	}
	level := slog.LevelWarn
	if a.verbose {
		level = slog.LevelDebug
	}
	a.logLevel.Set(level)
	a.log = newLogger(a.stderr, a.logFormat, &a.logLevel)
	slog.SetDefault(a.log)
	return nil
}

// logInfo lets a long-running command (wal watch) log its info lines
// unless -q (or -v already asked for more).
func (a *app) logInfo() {
	if !a.quiet && !a.verbose {
		a.logLevel.Set(slog.LevelInfo)
	}
}

func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	if format == logJSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(&textHandler{w: w, mu: &sync.Mutex{}, level: level})
}

// errorLine writes the line that ends a failed command in the --log-format
// format (for run(): memento: MSG in text, a JSON object with exit_code in json).
func (a *app) errorLine(msg string, code int) {
	format := a.logFormat
	if format == "" {
		format = os.Getenv("MEMENTO_LOG_FORMAT")
	}
	if format != logJSON {
		fmt.Fprintf(a.stderr, "memento: %s\n", msg)
		return
	}
	newLogger(a.stderr, logJSON, slog.LevelError).Error(msg, "exit_code", code)
}

// textHandler writes "memento: level: msg k=v ..." lines (see above).
type textHandler struct {
	w      io.Writer
	mu     *sync.Mutex
	level  slog.Leveler
	attrs  []byte // preformatted " k=v" of WithAttrs
	prefix string // group prefix of keys, "g."
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString("memento: ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("warning: ")
	case r.Level >= slog.LevelInfo:
		b.WriteString("info: ")
	default:
		b.WriteString("debug: ")
	}
	b.WriteString(oneLine(r.Message))
	b.Write(h.attrs)
	r.Attrs(func(at slog.Attr) bool {
		appendAttr(&b, h.prefix, at)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(b.Bytes())
	return err
}

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b bytes.Buffer
	b.Write(h.attrs)
	for _, at := range as {
		appendAttr(&b, h.prefix, at)
	}
	n := *h
	n.attrs = b.Bytes()
	return &n
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix += name + "."
	return &n
}

// appendAttr writes " key=value", quoting a value as slog's text handler
// does when it has spaces, quotes or is empty.
func appendAttr(b *bytes.Buffer, prefix string, at slog.Attr) {
	v := at.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if at.Key != "" {
			p += at.Key + "."
		}
		for _, g := range v.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	if at.Equal(slog.Attr{}) {
		return
	}
	var s string
	switch v.Kind() {
	case slog.KindTime:
		s = v.Time().Format(time.RFC3339Nano)
	case slog.KindDuration:
		s = v.Duration().String()
	default:
		s = v.String()
	}
	b.WriteByte(' ')
	b.WriteString(prefix + at.Key)
	b.WriteByte('=')
	if s == "" || strings.ContainsAny(s, " \t\n\"=\\") || !strconv.CanBackquote(s) {
		s = strconv.Quote(s)
	}
	b.WriteString(s)
}
