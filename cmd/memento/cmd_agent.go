package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/agent"
)

func newAgentCommand(a *app) *cobra.Command {
	var (
		configFile  string
		dataDir     string
		listen      string
		checkConfig bool
	)
	c := &cobra.Command{
		Use:   "agent [--config FILE] [--data-dir DIR] [--listen ADDR] [--check-config]",
		Short: "Run everything for every space of a data dir: WAL archiving, backups, retention, prune, verification, compaction, replication",
		Long: `agent is one long-running process per Engram data dir (docs/operations/agent-contract.md):
it archives the WAL of every space continuously (as 'wal watch --all'), backs
up every space on a cron schedule (nightly at 02:00 UTC by default; schedules
are read in UTC) and applies the retention policy after each
backup (GFS daily/weekly/monthly, the newest retention.min always kept), prunes
on its own schedule, runs the verification policy ('verify --schedule'),
compacts a space's archived WAL above wal_compact_threshold sealed segments
and replicates to the replicate.to destinations, bandwidth-limited. New
spaces are picked up without a restart. A failed job is logged, counted in
the metrics and retried with exponential backoff (5s .. 5m).

It serves /metrics (Prometheus), /healthz, /readyz and a status page at / on
--listen (loopback by default).

Configuration, one precedence: flags, then the environment (MEMENTO_REPOSITORY,
MEMENTO_PASSWORD_FILE, MEMENTO_CACHE_DIR, ENGRAM_DATA_DIR,
BACKUP_RETENTION_DAILY/WEEKLY/MONTHLY, WAL_COMPACT_THRESHOLD,
MEMENTO_REPLICATE_LIMIT), then the YAML file of --config (unknown keys are an
error), then the defaults. --check-config prints the effective configuration
and exits 0, or 2 when it is invalid.

Only one agent runs per data dir (a lock in DIR/.memento/agent.lock, or in the
cache dir when the data dir is read-only): a second one exits 6.
SIGINT/SIGTERM stop it within seconds (an interrupted backup keeps no
partial snapshot; archiving resumes where it stopped at the next start), exit 0.`,
		Example: `  memento agent --data-dir /var/lib/engram --listen 127.0.0.1:9567
  memento agent --config /etc/memento/agent.yaml
  memento agent --config /etc/memento/agent.yaml --check-config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := agent.Defaults()
			if configFile != "" {
				if err := cfg.LoadConfigFile(configFile); err != nil {
					return usagef("%v", err)
				}
			}
			if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
				return usagef("%v", err)
			}
			fl, pf := cmd.Flags(), cmd.Root().PersistentFlags()
			if fl.Changed("data-dir") {
				cfg.DataDir = dataDir
			}
			if fl.Changed("listen") {
				cfg.Listen = listen
			}
			if pf.Changed("repo") {
				cfg.Repository = a.repoURL
			}
			if pf.Changed("password-file") {
				cfg.PasswordFile = a.passwordFile
			}
			if pf.Changed("cache-dir") {
				cfg.CacheDir = a.cacheDir
			}
			verr := cfg.Validate()
			if checkConfig {
				fmt.Fprint(a.stdout, cfg.YAML())
				if verr != nil {
					return usagef("%v", verr)
				}
				return nil
			}
			if verr != nil {
				return usagef("%v", verr)
			}
			return a.runAgent(cmd.Context(), cfg)
		},
	}
	fl := c.Flags()
	fl.StringVar(&configFile, "config", "", "YAML configuration file (docs/operations/agent-contract.md)")
	fl.StringVar(&dataDir, "data-dir", "", "Engram data directory (env ENGRAM_DATA_DIR)")
	fl.StringVar(&listen, "listen", agent.DefaultListen, "HTTP address of /metrics, /healthz, /readyz and the status page")
	fl.BoolVar(&checkConfig, "check-config", false, "print the effective configuration and exit (0: valid, 2: invalid)")
	return c
}

// runAgent wires an agent.Agent to the repository, the destinations and an
// HTTP server, and runs it until ctx ends.
func (a *app) runAgent(ctx context.Context, cfg agent.Config) error {
	a.repoURL, a.passwordFile, a.cacheDir = cfg.Repository, cfg.PasswordFile, cfg.CacheDir
	level := slog.LevelInfo
	if a.verbose {
		level = slog.LevelDebug
	} else if a.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	pw, err := a.password(false)
	if err != nil {
		return err
	}
	keys := repo.NewMemKeyCache() // argon2id once, not at every session
	ag, err := agent.New(agent.Options{Config: cfg, Logger: log, ListSpaces: listSpaces, Destination: a.destination,
		Open: func(ctx context.Context) (*repo.Repository, error) {
			be, err := a.backend(ctx, false)
			if err != nil {
				return nil, err
			}
			// Not openWith: a lock lost by one session is the agent's to
			// recover from (a new session), not the command's exit status.
			return repo.Open(ctx, be, repo.Options{Password: pw, CacheDir: cfg.CacheDir, Logger: log, KeyCache: keys})
		}})
	if err != nil {
		if errors.Is(err, agent.ErrConfig) {
			return usagef("%v", err)
		}
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return usagef("--listen %s: %v", cfg.Listen, err)
	}
	srv := &http.Server{Handler: ag.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "err", err)
		}
	}()
	log.Info("serving", "url", "http://"+ln.Addr().String()+"/")
	runErr := ag.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Debug("HTTP server stopped")
	return runErr
}
