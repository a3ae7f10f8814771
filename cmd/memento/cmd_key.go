package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"memento/repo"
	"memento/repo/keycache"
)

// defaultKDFTarget is the CPU time one unlock of a new key costs
// (docs/security.md: why 100 ms, why CPU time).
const defaultKDFTarget = 100 * time.Millisecond

func (a *app) addKeyFlags(pf *pflag.FlagSet) {
	pf.DurationVar(&a.keyCache, "key-cache", 0, "keep the unlocked repository key in the kernel session keyring this long (e.g. 15m), so that the next commands skip the password's key derivation (env MEMENTO_KEY_CACHE; default: off; docs/security.md)")
}

// keyCacheOf is the key cache --key-cache or $MEMENTO_KEY_CACHE asks for,
// or nil (the default: no cache).
func (a *app) keyCacheOf() (repo.KeyCache, error) {
	ttl := a.keyCache
	if ttl == 0 {
		if v := os.Getenv("MEMENTO_KEY_CACHE"); v != "" && v != "0" && v != "off" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, usagef("MEMENTO_KEY_CACHE=%s: want a duration such as 15m, or off", v)
			}
			ttl = d
		}
	}
	if ttl == 0 {
		return nil, nil
	}
	c, err := keycache.New(ttl)
	if err != nil {
		return nil, usagef("--key-cache: %v", err)
	}
	return c, nil
}

// kdfFlags are the cost flags of the commands that write a key file.
type kdfFlags struct{ target time.Duration }

func (f *kdfFlags) add(fl *pflag.FlagSet) {
	fl.DurationVar(&f.target, "kdf-target", defaultKDFTarget, "CPU time one unlock with the new key should cost on this machine (argon2id passes calibrated to it; never below OWASP's minimum of 19 MiB and 2 passes)")
}

func (f *kdfFlags) params() (repo.KDFParams, error) {
	if f.target < 0 || f.target > 10*time.Second {
		return repo.KDFParams{}, usagef("--kdf-target %s: want 0s..10s", f.target)
	}
	return repo.CalibrateKDF(f.target), nil
}

// withNewKey calibrates the new key's cost, opens the repository (with its
// lock) and reads the new password, then calls fn.
func (a *app) withNewKey(ctx context.Context, file string, kdf kdfFlags, fn func(r *repo.Repository, pw string, params repo.KDFParams) error) error {
	params, err := kdf.params()
	if err != nil {
		return err
	}
	r, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	pw, err := a.newPassword(file)
	if err != nil {
		return err
	}
	return fn(r, pw, params)
}

// newPassword reads the password of a new key: from file, else asked twice
// on the terminal.
func (a *app) newPassword(file string) (string, error) {
	if file != "" {
		return a.readPasswordFile(file)
	}
	return a.promptPassword("new password", true)
}

func newKeyCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Manage the repository's keys (passwords)",
		Long: `Every key file under keys/ wraps the same master secret with its own
password (docs/repository-format.md, section 4): add one per person or
service, change a password, remove a key that leaked. The key the command
was opened with is marked as the current one; the current key and the last
key cannot be removed.`,
	}
	c.AddCommand(newKeyListCommand(a), newKeyAddCommand(a), newKeyPasswdCommand(a), newKeyRemoveCommand(a), newKeyForgetCacheCommand(a))
	return c
}

func newKeyListCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the keys: id, created, host and user, argon2id cost, the one in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			keys, err := r.Keys(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.emit(keys)
			}
			a.printf("%-1s %-8s  %-20s  %-24s  %s\n", "", "ID", "CREATED", "USER@HOST", "KDF")
			for _, k := range keys {
				cur := " "
				if k.Current {
					cur = "*"
				}
				if k.Damaged != "" {
					a.printf("%s %-8s  damaged: %s\n", cur, k.ShortID(), oneLine(k.Damaged))
					continue
				}
				a.printf("%s %-8s  %-20s  %-24s  %s\n", cur, k.ShortID(), k.Created.UTC().Format("2006-01-02 15:04:05Z"), k.Username+"@"+k.Host, kdfString(k))
			}
			return nil
		},
	}
}

func kdfString(k repo.KeyInfo) string {
	if k.KDF != "argon2id" {
		return k.KDF
	}
	s := fmt.Sprintf("argon2id t=%d m=%dMiB p=%d", k.Params.Time, k.Params.MemoryKiB>>10, k.Params.Threads)
	if !k.Params.KDFFloorOK() {
		s += " (below OWASP's minimum: 'memento key passwd' re-wraps it)"
	}
	return s
}

func newKeyAddCommand(a *app) *cobra.Command {
	var file string
	var kdf kdfFlags
	c := &cobra.Command{
		Use:   "add",
		Short: "Add a key: another password that opens the repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNewKey(cmd.Context(), file, kdf, func(r *repo.Repository, pw string, params repo.KDFParams) error {
				k, err := r.AddKey(cmd.Context(), pw, params)
				if err != nil {
					return err
				}
				a.printf("added key %s (%s)\n", k.ShortID(), kdfString(k))
				return a.emit(k)
			})
		},
	}
	c.Flags().StringVar(&file, "new-password-file", "", "read the new key's password from this file (default: ask on the terminal, twice)")
	kdf.add(c.Flags())
	return c
}

func newKeyPasswdCommand(a *app) *cobra.Command {
	var file string
	var kdf kdfFlags
	c := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password of the key in use (a new key file replaces it)",
		Long: `Change the password of the key in use: a key file for the new password,
with argon2id's cost calibrated anew (--kdf-target), is written, and then the
old key file is removed. Use it also to raise the cost of an old key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNewKey(cmd.Context(), file, kdf, func(r *repo.Repository, pw string, params repo.KDFParams) error {
				old := r.CurrentKey()
				k, err := r.ChangePassword(cmd.Context(), pw, params)
				if err != nil {
					return err
				}
				a.forgetCachedKey(r.Config().ID)
				a.printf("changed the password: key %s replaces key %.8s (%s)\n", k.ShortID(), old, kdfString(k))
				return a.emit(map[string]any{"removed": old, "added": k})
			})
		},
	}
	c.Flags().StringVar(&file, "new-password-file", "", "read the new password from this file (default: ask on the terminal, twice)")
	kdf.add(c.Flags())
	return c
}

func newKeyRemoveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a key (not the one in use, not the last one)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			k, err := r.FindKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := r.RemoveKey(cmd.Context(), k.ID); err != nil {
				return err
			}
			a.printf("removed key %s\n", k.ShortID())
			return a.emit(map[string]any{"removed": k.ID})
		},
	}
}

func newKeyForgetCacheCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "forget-cache",
		Short: "Remove the repository's unlocked key from the kernel keyring (--key-cache)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			be, err := a.backend(cmd.Context(), false)
			if err != nil {
				return err
			}
			cfg, err := repo.LoadConfig(cmd.Context(), be)
			if err != nil {
				return err
			}
			c, _ := keycache.New(time.Minute)
			if err := c.Forget(cfg.ID); err != nil {
				return err
			}
			a.printf("forgot the cached key of repository %s\n", cfg.ID[:8])
			return a.emit(map[string]any{"repository": cfg.ID, "forgotten": true})
		},
	}
}

// forgetCachedKey drops the repository's cached key after its key files
// changed; failing to is only worth a warning (the entry expires anyway).
func (a *app) forgetCachedKey(id string) {
	c, _ := keycache.New(time.Minute)
	if err := c.Forget(id); err != nil && !errors.Is(err, keycache.ErrUnsupported) {
		a.log.Warn("key cache: could not forget the cached key", "err", err)
	}
}
