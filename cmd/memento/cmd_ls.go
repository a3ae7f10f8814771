package main

import (
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/inspect"
)

// lsEntry is one line of `ls --json`.
type lsEntry struct {
	Path   string    `json:"path"`
	Type   string    `json:"type"`
	Mode   string    `json:"mode"`
	Size   uint64    `json:"size"`
	MTime  time.Time `json:"mtime"`
	BLAKE3 string    `json:"blake3,omitempty"`
	Target string    `json:"link_target,omitempty"`
}

func newLsCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ls SNAPSHOT [DIR]",
		Short: "List the files of a snapshot (recursively below DIR)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			sn, err := r.FindSnapshot(ctx, args[0])
			if err != nil {
				return err
			}
			start := "/"
			if len(args) == 2 {
				start = path.Clean("/" + args[1])
			}
			var out []lsEntry
			err = inspect.Walk(ctx, r, sn, start, func(p string, n *repo.Node) error {
				e := lsEntry{Path: p, Type: n.Type, Mode: nodeMode(n).String(), Size: n.Size, MTime: time.Unix(0, n.MTimeNS).UTC(), Target: n.LinkTarget}
				if n.BLAKE3 != nil {
					e.BLAKE3 = n.BLAKE3.String()
				}
				if a.jsonOut {
					out = append(out, e)
					return nil
				}
				line := fmt.Sprintf("%s %12d %s %s", e.Mode, e.Size, e.MTime.Local().Format("2006-01-02 15:04:05"), p)
				if n.Type == repo.NodeSymlink {
					line += " -> " + n.LinkTarget
				}
				a.printf("%s\n", line)
				return nil
			})
			if err != nil {
				return err
			}
			if a.jsonOut && out == nil {
				out = []lsEntry{}
			}
			return a.emit(out)
		},
	}
}

func nodeMode(n *repo.Node) fs.FileMode {
	m := fs.FileMode(n.Mode)
	switch n.Type {
	case repo.NodeDir:
		m |= fs.ModeDir
	case repo.NodeSymlink:
		m |= fs.ModeSymlink
	}
	return m
}
