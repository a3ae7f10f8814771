package main

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"memento/chunk"
	"memento/repo"
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
			err = walkSnapshot(ctx, r, sn, start, func(p string, n *repo.Node) error {
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
	case repo.NodeFIFO:
		m |= fs.ModeNamedPipe
	case repo.NodeSocket:
		m |= fs.ModeSocket
	case repo.NodeCharDev:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case repo.NodeBlockDev:
		m |= fs.ModeDevice
	}
	return m
}

// walkSnapshot calls fn for every node at or below start, depth first, in name order.
func walkSnapshot(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, start string, fn func(string, *repo.Node) error) error {
	id := sn.Root
	dir := "/"
	for _, part := range strings.Split(strings.Trim(start, "/"), "/") {
		if part == "" {
			continue
		}
		t, err := r.LoadTree(ctx, sn.Space, id)
		if err != nil {
			return err
		}
		n := t.Find(part)
		if n == nil {
			return fmt.Errorf("snapshot %s: %s: %w", sn.ShortID(), path.Join(dir, part), repo.ErrNotFound)
		}
		dir = path.Join(dir, part)
		if n.Type != repo.NodeDir {
			return fn(dir, n)
		}
		id = *n.Subtree
	}
	var walk func(id chunk.ID, dir string) error
	walk = func(id chunk.ID, dir string) error {
		t, err := r.LoadTree(ctx, sn.Space, id)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			p := path.Join(dir, n.Name)
			if err := fn(p, n); err != nil {
				return err
			}
			if n.Type == repo.NodeDir {
				if err := walk(*n.Subtree, p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(id, dir)
}
