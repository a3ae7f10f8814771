package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"memento/repo"
)

func newInitCommand(a *app) *cobra.Command {
	var insecure bool
	var cipher string
	var kdf kdfFlags
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a new repository",
		Args:  cobra.NoArgs,
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
			cfg, err := repo.Init(cmd.Context(), be, repo.InitOptions{Password: pw, Insecure: insecure, Cipher: cipher, KDF: params})
			if err != nil {
				return err
			}
			a.printf("created repository %s at %s (encryption: %s)\n", cfg.ID[:8], be.Location(), cfg.Encryption)
			return a.emit(map[string]any{"id": cfg.ID, "location": be.Location(), "encryption": cfg.Encryption, "version": cfg.Version})
		},
	}
	kdf.add(c.Flags())
	c.Flags().StringVar(&cipher, "cipher", "", "encryption of the new repository: "+repo.EncryptionXAES+" (default) or "+repo.EncryptionXChaCha+
		" (faster only on CPUs without AES instructions); fixed for the repository's life")
	c.Flags().BoolVar(&insecure, "insecure-no-encryption", false, "store data unencrypted (authenticated only); for testing")
	return c
}
