package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/dustin/go-humanize/english"
	"github.com/spf13/cobra"
	"github.com/zeebo/blake3"

	"memento/repo"
)

// recoverResult is recover-versions' report.
type recoverResult struct {
	Recovered []string `json:"recovered"`
	Lost      []string `json:"lost"`
}

func newRecoverVersionsCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "recover-versions",
		Short: "Undo deletions and overwrites on an S3 repository with Object Lock, from the retained versions",
		Long: `recover-versions repairs what credentials that cannot delete a retained
version can still do to an S3 repository with Object Lock (ransomware holding
the backup host's credentials): hide a file behind a delete marker, or put
other bytes over it as a newer version. For every file with several
versions whose current version is a delete marker or does not hash to its
name, it copies the newest version that does back over it (a new version,
retained like any write). It deletes nothing, needs no password and no lock,
and can run with the backup host's credentials. It prints one line per file
it recovered; a file of which no good version is left fails it (exit 5).
See docs/operations/ransomware.md.`,
		Example: `  memento recover-versions -r s3:https://s3.example.com/backups/memento`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.HasPrefix(a.repoURL, "s3:") {
				return usagef("recover-versions works on S3 repositories with Object Lock; %q is not one (a local repository has no versions: restore it from its file system snapshots)", a.repoURL)
			}
			be, err := a.openS3Backend(cmd.Context(), a.repoURL, false)
			if err != nil {
				return err
			}
			rec, lost, err := be.Recover(cmd.Context(), goodRepositoryFile)
			res := recoverResult{Recovered: append([]string{}, rec...), Lost: append([]string{}, lost...)}
			for _, n := range rec {
				a.printf("recovered %s\n", n)
			}
			if err != nil {
				return err
			}
			for _, n := range lost {
				a.printf("lost      %s: no version of it hashes to its name\n", n)
			}
			a.printf("%s recovered, %d without a good version\n", plural(len(rec), "file"), len(lost))
			if err := a.emit(res); err != nil {
				return err
			}
			if len(lost) > 0 {
				return fmt.Errorf("%w: %s of %s %s no version that hashes to its name, first %s", repo.ErrCorrupt, plural(len(lost), "file"), be.Location(), english.PluralWord(len(lost), "has", "have"), lost[0])
			}
			return nil
		},
	}
}

// goodRepositoryFile says whether r holds what a repository file called
// name must hold: the BLAKE3 named by its name (every file but config), or
// for config a JSON object (it is checked against the key when opened).
func goodRepositoryFile(name string, r io.Reader) (bool, error) {
	if name == "config" {
		var v map[string]any
		data, err := io.ReadAll(io.LimitReader(r, 1<<20))
		if err != nil {
			return false, err
		}
		return json.Unmarshal(data, &v) == nil && v["version"] != nil, nil
	}
	h := blake3.New()
	if _, err := io.Copy(h, r); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == path.Base(name), nil
}
