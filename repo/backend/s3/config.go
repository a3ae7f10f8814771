package s3

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults, chosen for a 16 MiB pack size on a fast link: a pack goes up in
// one PUT (a multipart upload costs two extra round trips and buys nothing
// at that size), larger files in parallel parts.
const (
	DefaultConnections = 8
	DefaultPartSize    = 16 << 20
	DefaultPartThreads = 4
	// DefaultSinglePutLimit is the largest file written with one PUT.
	DefaultSinglePutLimit = 32 << 20
	DefaultIOTimeout      = 60 * time.Second
	DefaultRetries        = 4
	minPartSize           = 5 << 20 // S3's minimum for every part but the last
)

// Config says where a repository lives and how to talk to it.
type Config struct {
	Endpoint string // host[:port]
	Secure   bool   // https
	Bucket   string
	Prefix   string // without leading or trailing slash; may be empty

	AccessKey, SecretKey, SessionToken string
	Region                             string
	StorageClass                       string // e.g. STANDARD_IA, INTELLIGENT_TIERING; empty: the bucket's default

	Connections    int           // at most this many connections to the endpoint
	PartSize       int64         // part size of multipart uploads
	PartThreads    int           // parts of one file uploaded at once
	SinglePutLimit int64         // files up to this size go up in one PUT
	IOTimeout      time.Duration // a connection with no progress for this long is dropped
	Retries        int           // attempts after the first for a transient failure
	// Checksum is how an upload's bytes are protected on their way to the
	// server (see UploadChecksum); empty means ChecksumAuto.
	Checksum UploadChecksum
	// RetryBase is the first backoff; each retry doubles it (with full jitter), up to 30 s.
	RetryBase time.Duration

	// ObjectLockDays > 0 writes every file but locks with an S3 Object Lock
	// retention of that many days (objectlock.go): until then no
	// credentials can delete or overwrite the stored version (COMPLIANCE),
	// or only credentials allowed to bypass governance can (GOVERNANCE).
	// Create makes a missing bucket with Object Lock enabled and this
	// default retention; Open refuses a bucket without Object Lock.
	ObjectLockDays int
	// ObjectLockMode is ObjectLockCompliance (the default) or ObjectLockGovernance.
	ObjectLockMode string
	// BypassGovernance deletes files under GOVERNANCE retention (the
	// privileged host's prune and forget; its credentials need
	// s3:BypassGovernanceRetention).
	BypassGovernance bool
}

// Object Lock retention modes (Config.ObjectLockMode).
const (
	ObjectLockCompliance = "compliance"
	ObjectLockGovernance = "governance"
)

// UploadChecksum says what proves to the server that an upload arrived
// intact. Hashing is the largest CPU cost of an upload on a fast link
// (SHA-256 runs at about 1 GB/s per core, on the client and again on the
// server), and repository files are already named by their BLAKE3 and
// checked on every read, so the choice is between cost and how early a
// corrupted transfer is noticed.
type UploadChecksum string

const (
	// ChecksumAuto is ChecksumCRC32C, falling back for good to what
	// minio-go does by default (ChecksumSHA256 on http, ChecksumNone on
	// https, where TLS authenticates every byte) the first time a server
	// refuses an upload with a trailer.
	ChecksumAuto UploadChecksum = ""
	// ChecksumMD5 sends a Content-MD5 header: the server rejects a body
	// that does not match it. It costs an extra read of the source and an
	// MD5 pass (slower than SHA-256 on CPUs with SHA extensions), and
	// multipart uploads then send their parts one at a time.
	ChecksumMD5 UploadChecksum = "md5"
	// ChecksumSHA256 signs the payload chunk by chunk (SigV4 streaming,
	// SHA-256 of every 64 KiB chunk on both sides): minio-go's default on
	// http, and the most expensive.
	ChecksumSHA256 UploadChecksum = "sha256"
	// ChecksumCRC32C sends the payload unsigned with a CRC32C of the
	// whole object, which the server checks: nearly free on both sides.
	// A body already in memory (*bytes.Reader: every file a backup
	// writes) gets it as the x-amz-checksum-crc32c header, computed
	// first; a stream (replication) and the parts of a multipart upload
	// get it in an HTTP trailer (aws-chunked encoding), which needs a
	// server that knows trailing checksums (AWS S3 since 2022, MinIO). A
	// server that knows neither ignores the header (no check, as with
	// ChecksumNone) and refuses the trailer.
	ChecksumCRC32C UploadChecksum = "crc32c"
	// ChecksumNone sends the payload unsigned (UNSIGNED-PAYLOAD) with no
	// digest: TCP's checksum on http, TLS on https.
	ChecksumNone UploadChecksum = "none"
)

// ErrBadURL is wrapped by every error about a malformed repository URL.
var ErrBadURL = errors.New("invalid S3 repository URL")

// ParseURL parses "s3:http://host[:port]/bucket[/prefix]" or the https form.
// Credentials never go in the URL (they would end up in shell history and
// process listings); they come from the environment (ConfigFromEnv).
func ParseURL(s string) (Config, error) {
	var cfg Config
	rest, ok := strings.CutPrefix(s, "s3:")
	if !ok {
		return cfg, fmt.Errorf("%w %q: does not start with \"s3:\"", ErrBadURL, s)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return cfg, fmt.Errorf("%w %q: %v", ErrBadURL, s, err)
	}
	switch u.Scheme {
	case "http":
	case "https":
		cfg.Secure = true
	default:
		return cfg, fmt.Errorf("%w %q: want s3:http://host/bucket or s3:https://host/bucket", ErrBadURL, s)
	}
	switch {
	case u.Host == "":
		return cfg, fmt.Errorf("%w %q: no host", ErrBadURL, s)
	case u.User != nil:
		return cfg, fmt.Errorf("%w %q: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrBadURL, s)
	case u.RawQuery != "" || u.Fragment != "":
		return cfg, fmt.Errorf("%w %q: query and fragment are not supported", ErrBadURL, s)
	}
	cfg.Endpoint = u.Host
	p := strings.Trim(u.Path, "/")
	if p == "" {
		return cfg, fmt.Errorf("%w %q: no bucket", ErrBadURL, s)
	}
	cfg.Bucket, cfg.Prefix, _ = strings.Cut(p, "/")
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if err := checkBucketName(cfg.Bucket); err != nil {
		return cfg, fmt.Errorf("%w %q: bucket %q: %v", ErrBadURL, s, cfg.Bucket, err)
	}
	if cfg.Prefix != "" {
		if err := ValidateName(cfg.Prefix); err != nil {
			return cfg, fmt.Errorf("%w %q: prefix: %v", ErrBadURL, s, err)
		}
	}
	return cfg, nil
}

// checkBucketName applies S3's bucket naming rules, so a typo is caught here
// with a clear message rather than as an obscure server error.
func checkBucketName(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("must be 3 to 63 characters")
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '-' || r == '.') && i > 0 && i < len(b)-1
		if !ok {
			return errors.New("may hold only lowercase letters, digits, '-' and '.', and must start and end with a letter or digit")
		}
	}
	if strings.Contains(b, "..") {
		return errors.New("must not contain \"..\"")
	}
	return nil
}

// ConfigFromEnv parses the URL and fills credentials and tuning from the
// environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
// overridden by MEMENTO_S3_ACCESS_KEY / MEMENTO_S3_SECRET_KEY (so memento can
// use other credentials than the AWS CLI on the same host); MEMENTO_S3_REGION
// or AWS_REGION / AWS_DEFAULT_REGION; MEMENTO_S3_STORAGE_CLASS,
// MEMENTO_S3_CONNECTIONS, MEMENTO_S3_TIMEOUT (a Go duration),
// MEMENTO_S3_RETRIES and MEMENTO_S3_CHECKSUM (auto, crc32c, md5, sha256 or none);
// MEMENTO_S3_OBJECT_LOCK_DAYS, MEMENTO_S3_OBJECT_LOCK_MODE (compliance or
// governance) and MEMENTO_S3_BYPASS_GOVERNANCE (1 or true).
func ConfigFromEnv(rawURL string) (Config, error) {
	return configFrom(rawURL, os.Getenv)
}

func configFrom(rawURL string, getenv func(string) string) (Config, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return cfg, err
	}
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := getenv(k); v != "" {
				return v
			}
		}
		return ""
	}
	cfg.AccessKey = first("MEMENTO_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
	cfg.SecretKey = first("MEMENTO_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
	if getenv("MEMENTO_S3_ACCESS_KEY") == "" {
		cfg.SessionToken = getenv("AWS_SESSION_TOKEN")
	}
	cfg.Region = first("MEMENTO_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
	cfg.StorageClass = getenv("MEMENTO_S3_STORAGE_CLASS")
	if v := getenv("MEMENTO_S3_CONNECTIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1024 {
			return cfg, fmt.Errorf("MEMENTO_S3_CONNECTIONS=%q: want a number from 1 to 1024", v)
		}
		cfg.Connections = n
	}
	if v := getenv("MEMENTO_S3_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("MEMENTO_S3_TIMEOUT=%q: want a positive duration such as 30s", v)
		}
		cfg.IOTimeout = d
	}
	if v := getenv("MEMENTO_S3_RETRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return cfg, fmt.Errorf("MEMENTO_S3_RETRIES=%q: want a number from 0 to 100", v)
		}
		cfg.Retries = n
	}
	switch v := UploadChecksum(strings.ToLower(getenv("MEMENTO_S3_CHECKSUM"))); v {
	case "auto", ChecksumAuto:
	case ChecksumMD5, ChecksumSHA256, ChecksumCRC32C, ChecksumNone:
		cfg.Checksum = v
	default:
		return cfg, fmt.Errorf("MEMENTO_S3_CHECKSUM=%q: want auto, crc32c, md5, sha256 or none", v)
	}
	if v := getenv("MEMENTO_S3_OBJECT_LOCK_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxObjectLockDays {
			return cfg, fmt.Errorf("MEMENTO_S3_OBJECT_LOCK_DAYS=%q: want a number of days from 0 to %d", v, MaxObjectLockDays)
		}
		cfg.ObjectLockDays = n
	}
	if v := getenv("MEMENTO_S3_OBJECT_LOCK_MODE"); v != "" {
		cfg.ObjectLockMode = strings.ToLower(v)
		if cfg.ObjectLockMode != ObjectLockCompliance && cfg.ObjectLockMode != ObjectLockGovernance {
			return cfg, fmt.Errorf("MEMENTO_S3_OBJECT_LOCK_MODE=%q: want compliance or governance", v)
		}
	}
	switch v := strings.ToLower(getenv("MEMENTO_S3_BYPASS_GOVERNANCE")); v {
	case "", "0", "false":
	case "1", "true":
		cfg.BypassGovernance = true
	default:
		return cfg, fmt.Errorf("MEMENTO_S3_BYPASS_GOVERNANCE=%q: want 1 or 0", v)
	}
	return cfg, nil
}

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartThreads == 0 {
		c.PartThreads = DefaultPartThreads
	}
	if c.SinglePutLimit == 0 {
		c.SinglePutLimit = DefaultSinglePutLimit
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.RetryBase == 0 {
		c.RetryBase = time.Second
	}
	if c.ObjectLockMode == "" {
		c.ObjectLockMode = ObjectLockCompliance
	}
	switch {
	case c.Endpoint == "":
		return c, errors.New("s3 backend: no endpoint")
	case c.PartSize < minPartSize:
		return c, fmt.Errorf("s3 backend: part size %d is below S3's minimum of %d", c.PartSize, minPartSize)
	case c.Checksum != ChecksumAuto && c.Checksum != ChecksumMD5 && c.Checksum != ChecksumSHA256 && c.Checksum != ChecksumCRC32C && c.Checksum != ChecksumNone:
		return c, fmt.Errorf("s3 backend: upload checksum %q: want crc32c, md5, sha256 or none", c.Checksum)
	case c.ObjectLockDays < 0 || c.ObjectLockDays > MaxObjectLockDays:
		return c, fmt.Errorf("s3 backend: object lock of %d days: want 0 to %d", c.ObjectLockDays, MaxObjectLockDays)
	case c.ObjectLockMode != "" && c.ObjectLockMode != ObjectLockCompliance && c.ObjectLockMode != ObjectLockGovernance:
		return c, fmt.Errorf("s3 backend: object lock mode %q: want compliance or governance", c.ObjectLockMode)
	case c.AccessKey == "" || c.SecretKey == "":
		return c, fmt.Errorf("s3 backend: no credentials for %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or MEMENTO_S3_ACCESS_KEY and MEMENTO_S3_SECRET_KEY)", c.Endpoint)
	}
	if err := checkBucketName(c.Bucket); err != nil {
		return c, fmt.Errorf("s3 backend: bucket %q: %v", c.Bucket, err)
	}
	return c, nil
}

// String is the repository's URL, without credentials.
func (c Config) String() string {
	scheme := "http"
	if c.Secure {
		scheme = "https"
	}
	s := "s3:" + scheme + "://" + c.Endpoint + "/" + c.Bucket
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	return s
}
