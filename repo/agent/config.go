package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"memento/repo/replicate"
	"memento/repo/walarchive"
)

// Config is everything the agent needs besides the repository password. It
// is built in one order, each step overriding the one before: Defaults, the
// YAML file (LoadConfigFile / ParseConfig), the environment (ApplyEnv), then
// the command line flags (set by cmd/memento on the fields directly). The
// YAML keys are those of docs/operations/agent-contract.md.
type Config struct {
	DataDir      string `yaml:"data_dir"`
	Repository   string `yaml:"repository"`
	PasswordFile string `yaml:"password_file"`
	CacheDir     string `yaml:"cache_dir,omitempty"`
	Listen       string `yaml:"listen"`
	WAL          struct {
		Interval  Duration `yaml:"interval"`
		RPOBudget Duration `yaml:"rpo_budget"`
		// MinGap spaces the archive runs of one space
		// (walarchive.WatchOptions.MinGap; 0: the default).
		MinGap Duration `yaml:"min_gap,omitempty"`
	} `yaml:"wal"`
	// Schedules are 5-field cron expressions (UTC); "" turns the job off.
	Schedules struct {
		Backup     string `yaml:"backup"`
		Verify     string `yaml:"verify"`
		Prune      string `yaml:"prune"`
		WALCompact string `yaml:"wal_compact"`
		Replicate  string `yaml:"replicate"`
	} `yaml:"schedules"`
	// Retention is applied to a space after each of its backups.
	Retention struct {
		Daily   int `yaml:"daily"`
		Weekly  int `yaml:"weekly"`
		Monthly int `yaml:"monthly"`
		Min     int `yaml:"min"` // the newest Min snapshots are always kept
	} `yaml:"retention"`
	WALCompactThreshold int `yaml:"wal_compact_threshold"`
	Replicate           struct {
		To    []string `yaml:"to"`
		Limit string   `yaml:"limit"`
	} `yaml:"replicate"`
}

// Duration is a time.Duration written as Go writes it ("1s", "30s").
type Duration time.Duration

// UnmarshalYAML reads "1s", "500ms", "2m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 1s or 30s", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the String form.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Default values, as docs/operations/agent-contract.md lists them.
const (
	DefaultListen      = "127.0.0.1:9567"
	DefaultLimit       = "10MiB"
	DefaultThreshold   = 100
	DefaultKeepMin     = 2
	DefaultBackupCron  = "0 2 * * *" // nightly, 02:00 UTC
	DefaultVerifyCron  = "*/10 * * * *"
	DefaultPruneCron   = "30 3 * * *"
	DefaultCompactCron = "15 * * * *"
	DefaultReplCron    = "*/15 * * * *"
)

// Defaults returns the configuration the agent runs with when nothing else is
// given: archiving every second, a nightly backup (02:00 UTC), GFS 7/4/12
// with at least 2 snapshots kept, verification every 10 minutes, prune
// nightly (03:30 UTC). Schedules are read in UTC.
func Defaults() Config {
	var c Config
	c.Listen = DefaultListen
	c.WAL.Interval = Duration(time.Second)
	c.WAL.RPOBudget = Duration(30 * time.Second)
	c.Schedules.Backup = DefaultBackupCron
	c.Schedules.Verify = DefaultVerifyCron
	c.Schedules.Prune = DefaultPruneCron
	c.Schedules.WALCompact = DefaultCompactCron
	c.Schedules.Replicate = DefaultReplCron
	c.Retention.Daily, c.Retention.Weekly, c.Retention.Monthly, c.Retention.Min = 7, 4, 12, DefaultKeepMin
	c.WALCompactThreshold = DefaultThreshold
	c.Replicate.Limit = DefaultLimit
	return c
}

// ErrConfig is returned when the configuration is invalid: an unknown key, a
// bad value, a missing data dir (exit 2).
var ErrConfig = errors.New("invalid agent configuration")

// ParseConfig decodes a YAML configuration over c (keys it lacks keep c's
// values). Unknown keys are an error: a typo is never silently ignored.
func (c *Config) ParseConfig(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

// LoadConfigFile reads the file at path over c.
func (c *Config) LoadConfigFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := c.ParseConfig(b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ApplyEnv overrides c with the environment variables of the contract that
// are set (getenv is os.Getenv in production). MEMENTO_PASSWORD is read
// where the password is needed, not here.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok && v != "" {
			*dst = v
		}
	}
	num := func(name string, dst *int) error {
		v, ok := lookup(name)
		if !ok || v == "" {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%w: %s=%q is not a number", ErrConfig, name, v)
		}
		*dst = n
		return nil
	}
	str("ENGRAM_DATA_DIR", &c.DataDir)
	str("MEMENTO_REPOSITORY", &c.Repository)
	str("MEMENTO_PASSWORD_FILE", &c.PasswordFile)
	str("MEMENTO_CACHE_DIR", &c.CacheDir)
	if v, ok := lookup("MEMENTO_REPLICATE_LIMIT"); ok && v != "" {
		c.Replicate.Limit = v
	}
	return errors.Join(num("BACKUP_RETENTION_DAILY", &c.Retention.Daily), num("BACKUP_RETENTION_WEEKLY", &c.Retention.Weekly),
		num("BACKUP_RETENTION_MONTHLY", &c.Retention.Monthly), num("WAL_COMPACT_THRESHOLD", &c.WALCompactThreshold))
}

// cronParser reads the standard 5-field expressions and @every/@daily.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseSchedule returns nil for "" (the job is off).
func parseSchedule(name, expr string) (cron.Schedule, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: schedules.%s %q: %v", ErrConfig, name, expr, err)
	}
	return s, nil
}

// scheduleInterval is the nominal time between two runs of s: the longest
// gap between its consecutive runs after now, over the coming week (at least
// two gaps, at most 2016 runs), so that an irregular schedule (weekdays only,
// 02:00 and 03:00) is judged by its longest pause, not its shortest.
func scheduleInterval(s cron.Schedule, now time.Time) time.Duration {
	prev := s.Next(now.UTC())
	if prev.IsZero() {
		return 0
	}
	horizon := prev.Add(7 * 24 * time.Hour)
	var longest time.Duration
	for i := 0; i < 2016; i++ {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		if gap := next.Sub(prev); gap > longest {
			longest = gap
		}
		prev = next
		if i >= 1 && !prev.Before(horizon) {
			break
		}
	}
	return longest
}

// Validate checks every value; the error lists all problems.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DataDir == "" {
		bad("no data dir: give --data-dir, data_dir in the config file, or ENGRAM_DATA_DIR")
	}
	if c.Repository == "" {
		bad("no repository: give --repo, repository in the config file, or MEMENTO_REPOSITORY")
	}
	if c.Listen == "" {
		bad("listen: an address is needed, e.g. %s", DefaultListen)
	}
	if c.WAL.Interval <= 0 {
		bad("wal.interval must be positive")
	}
	if c.WAL.RPOBudget <= 0 {
		bad("wal.rpo_budget must be positive")
	}
	if c.WAL.MinGap < 0 {
		bad("wal.min_gap must not be negative (0: the default, %s)", walarchive.DefaultMinGap)
	}
	for _, s := range []struct{ name, expr string }{{"backup", c.Schedules.Backup}, {"verify", c.Schedules.Verify},
		{"prune", c.Schedules.Prune}, {"wal_compact", c.Schedules.WALCompact}, {"replicate", c.Schedules.Replicate}} {
		if _, err := parseSchedule(s.name, s.expr); err != nil {
			errs = append(errs, errors.Unwrap(err))
			bad("schedules.%s %q: want a 5-field cron expression (UTC) or \"\" for off", s.name, s.expr)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"retention.daily", c.Retention.Daily}, {"retention.weekly", c.Retention.Weekly}, {"retention.monthly", c.Retention.Monthly}} {
		if n.v < -1 {
			bad("%s %d: give a count >= 0, or -1 for unlimited", n.name, n.v)
		}
	}
	if c.Retention.Min < 1 {
		bad("retention.min %d: at least 1 snapshot of each space is always kept", c.Retention.Min)
	}
	if c.WALCompactThreshold < 0 {
		bad("wal_compact_threshold %d: give a count >= 0 (0: no compaction)", c.WALCompactThreshold)
	}
	if _, err := replicate.ParseByteRate(c.Replicate.Limit); err != nil {
		bad("replicate.limit: %v", err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// YAML renders the effective configuration (--check-config).
func (c *Config) YAML() string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	_ = enc.Encode(c)
	return b.String()
}
