package s3

import (
	"context"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
)

// A request signed for the wrong region is worth another attempt when the
// answer names the bucket's region (minio-go caches it and signs the next
// one for it); without a region in the answer, or a plain denial, it is
// final. minio-go made that second attempt inside its own retries, which it
// no longer makes (minioRetries = 1).
func TestTransientWrongRegion(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		code, region string
		want         bool
	}{
		{"AuthorizationHeaderMalformed", "eu-west-1", true},
		{"InvalidRegion", "eu-central-1", true},
		{"AuthorizationHeaderMalformed", "", false},
		{"InvalidRegion", "", false},
		{"AccessDenied", "eu-west-1", false},
	} {
		err := minio.ErrorResponse{Code: c.code, Region: c.region, StatusCode: http.StatusBadRequest, Message: "test"}
		if got := transient(ctx, err); got != c.want {
			t.Errorf("%s with region %q: transient %v, want %v", c.code, c.region, got, c.want)
		}
	}
}
