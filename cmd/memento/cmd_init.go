package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"memento/repo"
)

func newInitCommand(a *app) *cobra.Command {
	var insecure bool
	var cipher string
	var kdf kdfFlags
	var format int
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a new repository",
		Long: `init creates a repository of the current format unless --format names an
older one, for a fleet that still runs older memento binaries (a replica or
restore host, an off-site copy read during a drill): a binary refuses a
repository of a newer format than its own as a whole. The format is fixed
for the repository's life, and every binary writes into it only what
binaries of that format read, so a repository of format 5 never gets
grouped small files (format 6), one of format 4 no version-2 state digest,
one of format 3 no delta blob or WAL-records form, one of format 2 no
XAES-256-GCM (it gets xchacha20-poly1305). 'memento version' prints the
formats this binary creates; 'memento info' a repository's. Format 1 is not
offered: its binaries do not all read what this one writes into it
(docs/repository-format.md, "Compatibility promise").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Password and cost first: a usage error leaves no directory behind.
			var pw string
			var params repo.KDFParams
			var err error
			if cipher != "" && !slices.Contains(repo.Ciphers(), cipher) {
				return usagef("--cipher %q: unknown cipher (want %s)", cipher, strings.Join(repo.Ciphers(), " or "))
			}
			if insecure && cipher != "" {
				return usagef("--cipher %s with --insecure-no-encryption: an unencrypted repository has no cipher", cipher)
			}
			if format < repo.OldestInitFormat || format > repo.FormatVersion {
				return usagef("--format %d: this binary creates repository formats %d to %d", format, repo.OldestInitFormat, repo.FormatVersion)
			}
			if cipher != "" && format < repo.CipherFormat(cipher) {
				return usagef("--cipher %s with --format %d: the cipher needs format %d or later", cipher, format, repo.CipherFormat(cipher))
			}
			if insecure {
				a.log.Warn("INSECURE: this repository will store everything UNENCRYPTED; anyone who can read it can read your data (integrity is still checked)")
				if !a.jsonOut {
					a.stderr.Write([]byte("WARNING: --insecure-no-encryption: data is stored in the clear.\n"))
				}
			} else {
				if params, err = kdf.params(); err != nil {
					return err
				}
				if pw, err = a.password(true); err != nil {
					return err
				}
			}
			be, err := a.backend(cmd.Context(), true)
			if err != nil {
				return err
			}
			cfg, err := repo.Init(cmd.Context(), be, repo.InitOptions{Password: pw, Insecure: insecure, Cipher: cipher, KDF: params, Format: format})
			if err != nil {
				return err
			}
			a.printf("created repository %s at %s (format %d, encryption: %s)\n", cfg.ID[:8], be.Location(), cfg.Version, cfg.Encryption)
			return a.emit(map[string]any{"id": cfg.ID, "location": be.Location(), "encryption": cfg.Encryption, "version": cfg.Version})
		},
	}
	kdf.add(c.Flags())
	c.Flags().StringVar(&cipher, "cipher", "", "encryption of the new repository: "+repo.EncryptionXAES+" (default; format 3 and later) or "+repo.EncryptionXChaCha+
		" (faster only on CPUs without AES instructions; the default of format 2); fixed for the repository's life")
	c.Flags().IntVar(&format, "format", repo.FormatVersion, fmt.Sprintf("repository format to create, %d to %d, for older memento binaries to open "+
		"(5: the binaries before grouped small files); fixed for the repository's life", repo.OldestInitFormat, repo.FormatVersion))
	c.Flags().BoolVar(&insecure, "insecure-no-encryption", false, "store data unencrypted (authenticated only); for testing")
	return c
}
