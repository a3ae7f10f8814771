package s3

import (
	"strings"
	"testing"
)

// The Object Lock settings from the environment, and one-line refusals
// naming the variable.
func TestConfigObjectLockFromEnv(t *testing.T) {
	const url = "s3:http://127.0.0.1:9000/bucket/p"
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	cfg, err := configFrom(url, env("MEMENTO_S3_OBJECT_LOCK_DAYS", "30", "MEMENTO_S3_OBJECT_LOCK_MODE", "GOVERNANCE", "MEMENTO_S3_BYPASS_GOVERNANCE", "1"))
	if err != nil || cfg.ObjectLockDays != 30 || cfg.ObjectLockMode != ObjectLockGovernance || !cfg.BypassGovernance {
		t.Fatalf("%+v %v", cfg, err)
	}
	cfg, err = configFrom(url, env("AWS_ACCESS_KEY_ID", "a", "AWS_SECRET_ACCESS_KEY", "b", "MEMENTO_S3_OBJECT_LOCK_DAYS", "7"))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := cfg.withDefaults(); err != nil || d.ObjectLockMode != ObjectLockCompliance {
		t.Fatalf("default mode: %q %v", d.ObjectLockMode, err)
	}
	for _, c := range []struct{ k, v string }{
		{"MEMENTO_S3_OBJECT_LOCK_DAYS", "-1"},
		{"MEMENTO_S3_OBJECT_LOCK_DAYS", "36501"},
		{"MEMENTO_S3_OBJECT_LOCK_DAYS", "30d"},
		{"MEMENTO_S3_OBJECT_LOCK_MODE", "legal-hold"},
		{"MEMENTO_S3_BYPASS_GOVERNANCE", "yes"},
	} {
		_, err := configFrom(url, env(c.k, c.v))
		if err == nil || !strings.HasPrefix(err.Error(), c.k+"=") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%s: %v", c.k, c.v, err)
		}
	}
}
