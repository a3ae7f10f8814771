package replicate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/backend/s3"
	"memento/repo/backend/s3/miniotest"
	"memento/repo/repotest"
)

// benchRepoFiles writes a repository-shaped directory of n packs of 16 MiB.
func benchRepoFiles(b *testing.B, n int) (string, int64) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "src")
	be := repotest.NewLocal(b, dir)
	ctx := context.Background()
	if err := be.Write(ctx, repo.ConfigName, strings.NewReader("{}"), 2); err != nil {
		b.Fatal(err)
	}
	var total int64
	for i := range n {
		data := repotest.RandomBytes(uint64(i+1), 16<<20)
		if err := be.Write(ctx, repo.FileName(repo.DirData, blake3.Sum256(data)), bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	return dir, total
}

// BenchmarkReplicateToS3 replicates 256 MiB of packs from a local
// repository into a fresh MinIO bucket per iteration.
func BenchmarkReplicateToS3(b *testing.B) {
	srv := miniotest.Start(b)
	dir, total := benchRepoFiles(b, 16)
	lsrc, err := local.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		cfg, _ := s3.ParseURL(srv.URL(srv.MakeBucket(b), "r"))
		cfg.AccessKey, cfg.SecretKey, cfg.Region = miniotest.AccessKey, miniotest.SecretKey, "us-east-1"
		dst, err := s3.Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Replicate(context.Background(), lsrc, dst, ReplicateOptions{Parallel: 8}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParallelPutToS3 is the yardstick: the same files uploaded by 8
// goroutines calling minio-go's PutObject directly, on the same wire
// protocol as the backend's default on http (unsigned payload with a CRC32C
// trailer), so the difference is what replication itself costs.
func BenchmarkParallelPutToS3(b *testing.B) {
	srv := miniotest.Start(b)
	dir, total := benchRepoFiles(b, 16)
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	cl, err := minio.New(srv.Endpoint, &minio.Options{Region: "us-east-1", TrailingHeaders: true,
		Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		bucket := srv.MakeBucket(b)
		b.StartTimer()
		g, ctx := errgroup.WithContext(context.Background())
		g.SetLimit(8)
		for i, p := range files {
			g.Go(func() error {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				fi, _ := f.Stat()
				_, err = cl.PutObject(ctx, bucket, fmt.Sprintf("r/%d", i), f, fi.Size(), minio.PutObjectOptions{DisableContentSha256: true})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}
