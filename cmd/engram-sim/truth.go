package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"memento/engram"
	"memento/walreplay"
)

func newTruthCmd() *cobra.Command {
	var (
		dir, space, at string
		toSeq          uint64
		human          bool
	)
	cmd := &cobra.Command{
		Use:   "truth --dir DIR --space ID [--at T | --to-seq N]",
		Short: "Replay a space's WAL and print sequence, timestamp and state digest",
		Long: `truth replays DIR/spaces/ID/wal up to --at T (entries with timestamp_ns <= T;
T as RFC 3339 with up to 9 fractional digits, or Unix nanoseconds), or up to
--to-seq N, or to the end, and prints the position reached and the state
digest as one JSON line in the format of the ground-truth file:
{"space":...,"sequence":...,"timestamp_ns":...,"digest":...,"timeline":N}
(see "engram-sim run --help" for the timeline fields).
A target before the first entry gives sequence 0 and the empty state's digest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || space == "" {
				return usageErrorf("--dir and --space are required")
			}
			if err := validateSpaceID(space); err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			var t walreplay.Target
			if at != "" {
				ns, err := walreplay.ParseTime(at)
				if err != nil {
					return fmt.Errorf("%w: --at: %w", errUsage, err)
				}
				t.AtTime = &ns
			}
			if cmd.Flags().Changed("to-seq") {
				t.ToSeq = &toSeq
			}
			if t.AtTime != nil && t.ToSeq != nil {
				return usageErrorf("give --at or --to-seq, not both")
			}
			return printTruth(cmd, dir, space, t, human)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "Engram data dir")
	f.StringVar(&space, "space", "", "space id")
	f.StringVar(&at, "at", "", "replay entries with timestamp <= T")
	f.Uint64Var(&toSeq, "to-seq", 0, "replay entries with sequence <= N")
	f.BoolVar(&human, "human", false, "print a readable block instead of a JSON line")
	return cmd
}

func printTruth(cmd *cobra.Command, dir, space string, t walreplay.Target, human bool) error {
	st, pos, err := replaySpace(cmd, dir, space, t)
	if err != nil {
		return err
	}
	l := stateLine(space, st)
	if l.timelineTag, err = readTimelineTag(dir, space); err != nil {
		return err
	}
	l.Sequence, l.TimestampNS = pos.Seq, pos.TimestampNS
	return writeTruthOut(cmd.OutOrStdout(), l, st.Len(), human)
}

func replaySpace(cmd *cobra.Command, dir, space string, t walreplay.Target) (*walreplay.State, walreplay.Position, error) {
	l, err := walreplay.OpenLog(engram.WALDir(dir, space))
	if err != nil {
		return nil, walreplay.Position{}, fmt.Errorf("space %s: %w", space, err)
	}
	st := walreplay.NewState()
	pos, err := l.Replay(cmd.Context(), t, st)
	if err != nil {
		return nil, pos, fmt.Errorf("space %s: replay to %s: %w", space, t, err)
	}
	return st, pos, nil
}

func writeTruthOut(w io.Writer, l truthLine, live int, human bool) error {
	if human {
		ts := "-"
		if l.Sequence > 0 {
			ts = walreplay.FormatTime(l.TimestampNS)
		}
		_, err := fmt.Fprintf(w, "space      %s\nsequence   %d\ntimestamp  %s (%d)\nrecords    %d\ndigest     %s\n",
			l.Space, l.Sequence, ts, l.TimestampNS, live, l.Digest)
		return err
	}
	b, err := jsonLine(l)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
