package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestWALReplayDigestKind: `wal replay` prints the version-1 digest by
// default and version 2 with --digest-kind lthash16 (what a format-5
// backup records), each equal to engram-sim's own replay; another kind is
// a usage error.
func TestWALReplayDigestKind(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "engram")
	e.sim("generate", "--dir", dir, "--size", "2M", "--spaces", "1", "--seed", "8", "--segment-size", "256KiB")
	const space = "space-a"
	truth := e.simTruth(dir, space)
	for _, c := range []struct {
		args       []string
		kind, want string
	}{
		{nil, "v1", truth.DigestV1},
		{[]string{"--digest-kind", "v1"}, "v1", truth.DigestV1},
		{[]string{"--digest-kind", "lthash16"}, "lthash16", truth.Digest},
	} {
		var got struct {
			Seq    uint64 `json:"seq"`
			Digest string `json:"digest"`
			Kind   string `json:"digest_kind"`
		}
		out := e.mustRun(append([]string{"wal", "replay", "--data-dir", dir, "--space", space, "--json"}, c.args...)...)
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %v\n%s", c.args, err, out)
		}
		if got.Seq != truth.Sequence || got.Digest != c.want || got.Kind != c.kind || c.want == "" {
			t.Fatalf("wal replay %v: %+v, want seq %d digest %s kind %s", c.args, got, truth.Sequence, c.want, c.kind)
		}
	}
	e.wantFail(exitUsage, `--digest-kind is v1 or lthash16, not "lthash17"`, "wal", "replay", "--data-dir", dir, "--space", space, "--digest-kind", "lthash17")
}
