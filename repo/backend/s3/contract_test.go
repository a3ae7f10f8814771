package s3

import (
	"testing"

	"memento/repo"
	"memento/repo/backend/backendtest"
)

// TestContract runs the contract every backend passes, each subtest on a
// fresh bucket. Object stores have no directories (Flat); the error texts
// are S3's own (they name bucket and key), so only what they wrap is
// checked. Skip lists where this backend departs from the local and mem
// backends today.
func TestContract(t *testing.T) {
	minioServer(t)
	backendtest.Run(t, backendtest.Config{
		ErrInvalidName: ErrInvalidName,
		Flat:           true,
		Skip: map[string]string{
			"WriteCancelledMidCopyLeavesNothing": "the upload reads ahead of the " +
				"cancellation (the source is read more than once after cancel)",
			"WriteSizeMismatchAndSourceErrors": "a source longer than the declared " +
				"size is cut at the size, not refused",
			"WriteExisting": "a second write of an existing name replaces the " +
				"object instead of keeping it (same size) or failing with fs.ErrExist",
			"ListCancelled": "a listing checks the context per page, not per file",
		},
	}, func(t *testing.T) repo.Backend {
		cfg, _ := testConfig(t, "")
		return openTest(t, cfg)
	})
}
