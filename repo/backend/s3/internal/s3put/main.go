// Command s3put is the yardstick of the replication benchmark
// (scripts/bench/s3.sh): it uploads every regular file below a directory to
// an S3 bucket, N files at once, each with one PutObject of minio-go
// straight from the open file. Nothing else: no listing of the destination,
// no ordering, no retries of its own. Its wire protocol is the S3 backend's
// default (unsigned payload with a CRC32C trailer; -checksum sha256 for
// minio-go's default on http), so that "replicate / s3put" measures what
// replication itself costs, not a choice of checksum.
//
//	s3put -endpoint 127.0.0.1:9000 -bucket b [-prefix p] [-parallel 8] DIR
//
// Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. The
// bucket is created when missing. It prints files, bytes and seconds.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sync/errgroup"
)

func main() {
	endpoint := flag.String("endpoint", "", "host:port of the S3 server (http)")
	bucket := flag.String("bucket", "", "bucket (created if missing)")
	prefix := flag.String("prefix", "", "key prefix")
	parallel := flag.Int("parallel", 8, "files uploaded at once")
	checksum := flag.String("checksum", "crc32c", "crc32c (unsigned payload, CRC32C trailer) or sha256 (signed payload)")
	flag.Parse()
	if *endpoint == "" || *bucket == "" || flag.NArg() != 1 || *parallel < 1 || (*checksum != "crc32c" && *checksum != "sha256") {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*endpoint, *bucket, *prefix, flag.Arg(0), *parallel, *checksum); err != nil {
		fmt.Fprintln(os.Stderr, "s3put:", err)
		os.Exit(1)
	}
}

func run(endpoint, bucket, prefix, dir string, parallel int, checksum string) error {
	start := time.Now()
	crc := checksum == "crc32c"
	cl, err := minio.New(endpoint, &minio.Options{
		Creds:           credentials.NewStaticV4(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		Region:          os.Getenv("AWS_REGION"),
		TrailingHeaders: crc,
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if ok, err := cl.BucketExists(ctx, bucket); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	} else if !ok {
		if err := cl.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: os.Getenv("AWS_REGION")}); err != nil {
			return fmt.Errorf("make bucket %s: %w", bucket, err)
		}
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true, DisableContentSha256: crc}
	if crc {
		opts.Checksum = minio.ChecksumCRC32C
	}
	var total int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, p := range files {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		total += fi.Size()
		g.Go(func() error {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			o := opts
			o.DisableMultipart = fi.Size() <= 32<<20
			if _, err := cl.PutObject(gctx, bucket, path.Join(prefix, filepath.ToSlash(rel)), f, fi.Size(), o); err != nil {
				return fmt.Errorf("put %s: %w", rel, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Printf("%d files, %d bytes, %.2f s\n", len(files), total, time.Since(start).Seconds())
	return nil
}
