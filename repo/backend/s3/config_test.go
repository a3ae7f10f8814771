package s3

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in                       string
		endpoint, bucket, prefix string
		secure                   bool
		err                      string
	}{
		{in: "s3:http://127.0.0.1:9000/bucket/prefix", endpoint: "127.0.0.1:9000", bucket: "bucket", prefix: "prefix"},
		{in: "s3:https://s3.example.com/my-bucket", endpoint: "s3.example.com", bucket: "my-bucket", secure: true},
		{in: "s3:https://s3.example.com/my.bucket/a/b/c/", endpoint: "s3.example.com", bucket: "my.bucket", prefix: "a/b/c", secure: true},
		{in: "s3:http://host/bkt//", endpoint: "host", bucket: "bkt"},
		{in: "http://host/bucket", err: `invalid S3 repository URL "http://host/bucket": does not start with "s3:"`},
		{in: "s3:ftp://host/bucket", err: "want s3:http://host/bucket or s3:https://host/bucket"},
		{in: "s3:http:///bucket", err: "no host"},
		{in: "s3:http://host", err: "no bucket"},
		{in: "s3:http://host/", err: "no bucket"},
		{in: "s3:http://key:secret@host/bucket", err: "credentials do not belong in the URL"},
		{in: "s3:http://host/Bucket", err: "may hold only lowercase letters"},
		{in: "s3:http://host/ab", err: "must be 3 to 63 characters"},
		{in: "s3:http://host/bucket/../x", err: `prefix: s3 backend: invalid file name "../x": ".." component`},
		{in: "s3:http://host/bucket?x=1", err: "query and fragment are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			cfg, err := ParseURL(tt.in)
			if tt.err != "" {
				if err == nil || !errors.Is(err, ErrBadURL) || !contains(err.Error(), tt.err) {
					t.Fatalf("ParseURL(%q) error %v, want one wrapping ErrBadURL containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Endpoint != tt.endpoint || cfg.Bucket != tt.bucket || cfg.Prefix != tt.prefix || cfg.Secure != tt.secure {
				t.Fatalf("ParseURL(%q) = %+v", tt.in, cfg)
			}
			// String gives back a URL that parses to the same place.
			again, err := ParseURL(cfg.String())
			if err != nil || again != cfg {
				t.Fatalf("round trip %q -> %q -> %+v, %v", tt.in, cfg.String(), again, err)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID": "aws-key", "AWS_SECRET_ACCESS_KEY": "aws-secret", "AWS_SESSION_TOKEN": "tok",
		"AWS_REGION": "eu-west-1", "MEMENTO_S3_STORAGE_CLASS": "INTELLIGENT_TIERING",
		"MEMENTO_S3_CONNECTIONS": "3", "MEMENTO_S3_TIMEOUT": "2s", "MEMENTO_S3_RETRIES": "1",
		"MEMENTO_S3_CHECKSUM": "SHA256",
	}
	get := func(k string) string { return env[k] }
	cfg, err := configFrom("s3:http://h:1/bucket", get)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Endpoint: "h:1", Bucket: "bucket", AccessKey: "aws-key", SecretKey: "aws-secret", SessionToken: "tok",
		Region: "eu-west-1", StorageClass: "INTELLIGENT_TIERING", Connections: 3, IOTimeout: 2 * time.Second, Retries: 1,
		Checksum: ChecksumSHA256}
	if cfg != want {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
	// memento's own variables win, and drop the AWS session token that
	// belongs to the other key.
	env["MEMENTO_S3_ACCESS_KEY"], env["MEMENTO_S3_SECRET_KEY"], env["MEMENTO_S3_REGION"] = "mk", "ms", "us-west-2"
	cfg, err = configFrom("s3:http://h:1/bucket", get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AccessKey != "mk" || cfg.SecretKey != "ms" || cfg.SessionToken != "" || cfg.Region != "us-west-2" {
		t.Fatalf("got %+v", cfg)
	}
	for v, want := range map[string]UploadChecksum{"auto": ChecksumAuto, "": ChecksumAuto, "crc32c": ChecksumCRC32C, "md5": ChecksumMD5, "none": ChecksumNone} {
		env["MEMENTO_S3_CHECKSUM"] = v
		if cfg, err := configFrom("s3:http://h:1/bucket", get); err != nil || cfg.Checksum != want {
			t.Errorf("MEMENTO_S3_CHECKSUM=%q: %q, %v; want %q", v, cfg.Checksum, err, want)
		}
	}
	if _, err := New(Config{Endpoint: "h:1", Bucket: "bucket", AccessKey: "a", SecretKey: "b", Checksum: "crc64"}); err == nil || !contains(err.Error(), `upload checksum "crc64"`) {
		t.Errorf("New with checksum crc64: %v", err)
	}
	for k, v := range map[string]string{"MEMENTO_S3_CONNECTIONS": "0", "MEMENTO_S3_TIMEOUT": "soon", "MEMENTO_S3_RETRIES": "-1", "MEMENTO_S3_CHECKSUM": "sha1"} {
		old := env[k]
		env[k] = v
		if _, err := configFrom("s3:http://h:1/bucket", get); err == nil || !contains(err.Error(), k) {
			t.Errorf("%s=%s: error %v, want one naming the variable", k, v, err)
		}
		env[k] = old
	}
	if _, err := New(Config{Endpoint: "h:1", Bucket: "bucket"}); err == nil || !contains(err.Error(), "no credentials for h:1") {
		t.Errorf("New without credentials: %v", err)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3:http://127.0.0.1:9000/bucket/prefix", "s3:https://h/b.c-d/x/y", "s3:http://h/", "s3:", "s3:http://[::1]:9/abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("error %v does not wrap ErrBadURL", err)
			}
			return
		}
		if checkBucketName(cfg.Bucket) != nil || (cfg.Prefix != "" && ValidateName(cfg.Prefix) != nil) {
			t.Fatalf("accepted %q with bad bucket or prefix: %+v", s, cfg)
		}
		if again, err := ParseURL(cfg.String()); err != nil || again != cfg {
			t.Fatalf("%q: String %q does not parse back: %+v %v", s, cfg.String(), again, err)
		}
	})
}
