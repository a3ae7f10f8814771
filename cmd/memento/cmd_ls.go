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
				e := lsEntry{Path: p, Type: n.Type, Mode: lsMode(nodeMode(n)), Size: n.Size, MTime: time.Unix(0, n.MTimeNS).UTC(), Target: n.LinkTarget}
				if n.BLAKE3 != nil {
					e.BLAKE3 = n.BLAKE3.String()
				}
				if a.jsonOut {
					out = append(out, e)
					return nil
				}
				line := fmt.Sprintf("%s %12d %s %s", e.Mode, e.Size, a.when(e.MTime), p)
				if n.Type == repo.NodeSymlink {
					line += " -> " + n.LinkTarget
				}
				a.answerf("%s\n", line)
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

// lsMode prints m as ls -l and restic do: the type letter (d l p s c b or
// -), then rwx triples with s/S, t/T for setuid, setgid and sticky.
// (Go's FileMode.String writes "Lrwxrwxrwx", "ugtrwx...".)
func lsMode(m fs.FileMode) string {
	b := []byte("----------")
	switch {
	case m&fs.ModeDir != 0:
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	special := func(pos int, set bool, lower, upper byte) {
		if !set {
			return
		}
		if b[pos] == 'x' {
			b[pos] = lower
		} else {
			b[pos] = upper
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
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
