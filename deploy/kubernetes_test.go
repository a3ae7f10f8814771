package deploy_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"

	"memento/repo/agent"
	"sigs.k8s.io/yaml"
)

// k8sKinds are the kinds deploy/kubernetes may hold, each decoded into its
// official k8s.io/api type. Anything else fails the test.
var k8sKinds = map[string]func() any{
	"batch/v1 CronJob":         func() any { return &batchv1.CronJob{} },
	"batch/v1 Job":             func() any { return &batchv1.Job{} },
	"apps/v1 Deployment":       func() any { return &appsv1.Deployment{} },
	"apps/v1 StatefulSet":      func() any { return &appsv1.StatefulSet{} },
	"v1 Secret":                func() any { return &corev1.Secret{} },
	"v1 ConfigMap":             func() any { return &corev1.ConfigMap{} },
	"v1 PersistentVolumeClaim": func() any { return &corev1.PersistentVolumeClaim{} },
	"v1 Service":               func() any { return &corev1.Service{} },
	"v1 ServiceAccount":        func() any { return &corev1.ServiceAccount{} },
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeK8s decodes every document of a manifest file strictly (unknown
// and duplicate fields are errors) into its k8s.io/api type.
func decodeK8s(name string, data []byte) ([]any, error) {
	var objs []any
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("%s document %d: %v", name, i+1, err)
		}
		mk := k8sKinds[tm.APIVersion+" "+tm.Kind]
		if mk == nil {
			return nil, fmt.Errorf("%s document %d: unexpected kind %q %q", name, i+1, tm.APIVersion, tm.Kind)
		}
		obj := mk()
		if err := strictDecode([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s document %d (%s): %v", name, i+1, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no document", name)
	}
	return objs, nil
}

// strictDecode decodes YAML the way the API server decodes a request under
// fieldValidation=Strict: duplicate keys, unknown fields and fields in the
// wrong case (encoding/json would accept "readonly" for readOnly) are errors.
func strictDecode(data []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return errors.Join(strictErrs...)
	}
	return nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// agentConfig is the agent's --config file as docs/operations/agent-contract.md
// defines it; the ConfigMap's agent.yaml must decode into it strictly.
type agentConfig struct {
	DataDir      string `json:"data_dir"`
	Repository   string `json:"repository,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	Listen       string `json:"listen"`
	WAL          struct {
		Interval  string `json:"interval"`
		RPOBudget string `json:"rpo_budget"`
	} `json:"wal"`
	Schedules struct {
		Backup     string `json:"backup"`
		Verify     string `json:"verify"`
		Prune      string `json:"prune"`
		WALCompact string `json:"wal_compact"`
		Replicate  string `json:"replicate"`
	} `json:"schedules"`
	Retention struct {
		Daily   int `json:"daily"`
		Weekly  int `json:"weekly"`
		Monthly int `json:"monthly"`
		Min     int `json:"min,omitempty"`
	} `json:"retention"`
	WALCompactThreshold int `json:"wal_compact_threshold"`
	Replicate           struct {
		To    []string `json:"to"`
		Limit string   `json:"limit"`
	} `json:"replicate"`
}

func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	var (
		cronJobs    []*batchv1.CronJob
		jobs        []*batchv1.Job
		deployments []*appsv1.Deployment
		statefuls   []*appsv1.StatefulSet
		secrets     = map[string]*corev1.Secret{}
		configMaps  = map[string]*corev1.ConfigMap{}
		pvcs        = map[string]bool{}
	)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeK8s(f, data)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, o := range objs {
			switch o := o.(type) {
			case *batchv1.CronJob:
				cronJobs = append(cronJobs, o)
			case *batchv1.Job:
				jobs = append(jobs, o)
			case *appsv1.Deployment:
				deployments = append(deployments, o)
			case *appsv1.StatefulSet:
				statefuls = append(statefuls, o)
			case *corev1.Secret:
				secrets[o.Name] = o
			case *corev1.ConfigMap:
				configMaps[o.Name] = o
			case *corev1.PersistentVolumeClaim:
				pvcs[o.Name] = true
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The backup CronJob.
	if len(cronJobs) != 1 {
		t.Fatalf("want 1 CronJob, got %d", len(cronJobs))
	}
	cj := cronJobs[0]
	if cj.Spec.Schedule != "0 */4 * * *" {
		t.Errorf("CronJob schedule %q, want every 4 hours", cj.Spec.Schedule)
	}
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("CronJob concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
	}
	if cj.Spec.SuccessfulJobsHistoryLimit == nil || cj.Spec.FailedJobsHistoryLimit == nil {
		t.Error("CronJob must set successfulJobsHistoryLimit and failedJobsHistoryLimit")
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := onlyContainer(t, "CronJob", pod.Containers, "backup")
	if args := strings.Join(append(append([]string{}, c.Command...), c.Args...), " "); !strings.Contains(args, "memento backup --data-dir") || !strings.Contains(args, "--all") {
		t.Errorf("CronJob runs %q, want memento backup --data-dir ... --all", args)
	}
	checkPodVolumes(t, "CronJob", pod, c, secrets, pvcs, configMaps)
	// Its runs push the job metrics, in a group stable across Jobs, with the
	// schedule's interval; the URL comes from the ConfigMap, which must
	// define it (else Kubernetes passes "$(MEMENTO_METRICS_PUSH)" as is).
	if args := strings.Join(c.Args, " "); !strings.Contains(args, " --metrics-push $(MEMENTO_METRICS_PUSH) --metrics-instance memento-backup --metrics-interval 4h") {
		t.Errorf("CronJob runs %q, want --metrics-push $(MEMENTO_METRICS_PUSH) --metrics-instance memento-backup --metrics-interval 4h", args)
	}
	if cm := configMaps["memento-config"]; cm == nil {
		t.Error("no ConfigMap memento-config")
	} else if _, ok := cm.Data["MEMENTO_METRICS_PUSH"]; !ok {
		t.Error("ConfigMap memento-config lacks MEMENTO_METRICS_PUSH, which the backup CronJob's args refer to")
	}

	// The Job that creates the repository.
	if len(jobs) != 1 {
		t.Fatalf("want 1 Job (memento init), got %d", len(jobs))
	}
	ic := onlyContainer(t, "Job", jobs[0].Spec.Template.Spec.Containers, "init")
	if len(ic.Args) != 1 || ic.Args[0] != "init" {
		t.Errorf("the init Job runs %v, want memento init", ic.Args)
	}

	// The agent: a Deployment, and the sidecar example.
	if len(deployments) != 1 {
		t.Fatalf("want 1 Deployment (the agent), got %d", len(deployments))
	}
	d := deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Error("the agent Deployment must run exactly one replica with the Recreate strategy (never two agents on one repository)")
	}
	a := onlyContainer(t, "Deployment", d.Spec.Template.Spec.Containers, "agent")
	checkAgentContainer(t, "Deployment", a)
	checkPodVolumes(t, "Deployment", d.Spec.Template.Spec, a, secrets, pvcs, configMaps)
	for _, s := range statefuls {
		for i := range s.Spec.Template.Spec.Containers {
			if c := &s.Spec.Template.Spec.Containers[i]; c.Name == "memento-agent" {
				checkAgentContainer(t, "StatefulSet "+s.Name, c)
			}
		}
	}

	// The Secret example and the ConfigMap with the agent's config.
	sec := secrets["memento-repository"]
	if sec == nil {
		t.Fatal("no Secret memento-repository")
	}
	for _, k := range []string{"password", "s3-access-key", "s3-secret-key"} {
		if sec.StringData[k] == "" {
			t.Errorf("Secret example lacks %s", k)
		}
	}
	cm := configMaps["memento-config"]
	if cm == nil {
		t.Fatal("no ConfigMap memento-config")
	}
	for _, k := range []string{"MEMENTO_REPOSITORY", "MEMENTO_PASSWORD_FILE", "ENGRAM_DATA_DIR",
		"BACKUP_RETENTION_DAILY", "BACKUP_RETENTION_WEEKLY", "BACKUP_RETENTION_MONTHLY", "WAL_COMPACT_THRESHOLD", "MEMENTO_REPLICATE_LIMIT"} {
		if cm.Data[k] == "" {
			t.Errorf("ConfigMap memento-config lacks %s", k)
		}
	}
	var cfg agentConfig
	if err := strictDecode([]byte(cm.Data["agent.yaml"]), &cfg); err != nil {
		t.Fatalf("ConfigMap agent.yaml does not follow the agent contract: %v", err)
	}
	if cfg.DataDir == "" || cfg.Listen == "" || cfg.Retention.Daily == 0 || cfg.WALCompactThreshold == 0 {
		t.Errorf("agent.yaml: data_dir, listen, retention and wal_compact_threshold must be set: %+v", cfg)
	}
	// And the agent itself reads it (its own strict decoding and checks).
	acfg := agent.Defaults()
	if err := acfg.ParseConfig([]byte(cm.Data["agent.yaml"])); err != nil {
		t.Fatalf("memento agent refuses the ConfigMap's agent.yaml: %v", err)
	}
	acfg.Repository = cm.Data["MEMENTO_REPOSITORY"]
	if err := acfg.Validate(); err != nil {
		t.Errorf("memento agent refuses the ConfigMap's agent.yaml: %v", err)
	}
}

func onlyContainer(t *testing.T, what string, cs []corev1.Container, name string) *corev1.Container {
	t.Helper()
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	t.Fatalf("%s has no container %q", what, name)
	return nil
}

func checkAgentContainer(t *testing.T, what string, c *corev1.Container) {
	t.Helper()
	if len(c.Args) == 0 || c.Args[0] != "agent" {
		t.Errorf("%s: the agent container runs %v, want memento agent ...", what, c.Args)
	}
	var port int32
	for _, p := range c.Ports {
		if p.ContainerPort == 9567 {
			port = p.ContainerPort
		}
	}
	if port == 0 {
		t.Errorf("%s: the agent exposes no port 9567", what)
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want {
			t.Errorf("%s: want an HTTP probe on %s: %+v", what, want, probe)
		}
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("%s: the agent needs liveness and readiness probes", what)
	}
}

// checkPodVolumes: Engram's data read-only where the pod only reads it, the
// repository on a PVC (or S3: then the credentials come from the Secret), the
// password from the Secret, hardened containers.
func checkPodVolumes(t *testing.T, what string, pod corev1.PodSpec, c *corev1.Container, secrets map[string]*corev1.Secret, pvcs map[string]bool, cms map[string]*corev1.ConfigMap) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		if _, ok := vols[m.Name]; !ok {
			t.Errorf("%s: mount %s names no volume", what, m.Name)
		}
		mounts[m.MountPath] = m
	}
	data, ok := mounts["/var/lib/engram"]
	if !ok || !data.ReadOnly {
		t.Errorf("%s: Engram's data dir must be mounted read-only at /var/lib/engram", what)
	} else if v := vols[data.Name]; v.PersistentVolumeClaim == nil || !v.PersistentVolumeClaim.ReadOnly {
		t.Errorf("%s: the data volume must be a read-only PVC claim", what)
	}
	repoMount, ok := mounts["/srv/memento"]
	if !ok {
		t.Errorf("%s: no repository volume at /srv/memento", what)
	} else if v := vols[repoMount.Name]; v.PersistentVolumeClaim == nil || !pvcs[v.PersistentVolumeClaim.ClaimName] {
		t.Errorf("%s: the repository volume must be a PVC defined in deploy/kubernetes", what)
	}
	pw, ok := mounts["/etc/memento/secret"]
	if !ok {
		t.Fatalf("%s: no password mount at /etc/memento/secret", what)
	}
	v := vols[pw.Name]
	if v.Secret == nil || secrets[v.Secret.SecretName] == nil {
		t.Errorf("%s: the password must come from the Secret memento-repository", what)
	} else if m := v.Secret.DefaultMode; m == nil || (*m != 0o400 && *m != 0o440) {
		t.Errorf("%s: the password file must not be readable by others (memento refuses it): mode %v", what, v.Secret.DefaultMode)
	}
	if cms["memento-config"].Data["MEMENTO_PASSWORD_FILE"] != "/etc/memento/secret/password" {
		t.Errorf("%s: MEMENTO_PASSWORD_FILE does not point into the Secret's mount", what)
	}
	s3 := map[string]bool{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && secrets[e.ValueFrom.SecretKeyRef.Name] != nil {
			s3[e.Name] = true
		}
	}
	if !s3["MEMENTO_S3_ACCESS_KEY"] || !s3["MEMENTO_S3_SECRET_KEY"] {
		t.Errorf("%s: the S3 credentials must come from the Secret", what)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: container %s must set allowPrivilegeEscalation: false and readOnlyRootFilesystem: true", what, c.Name)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: the pod must run as non-root", what)
	}
}

// TestKubernetesDecodingIsStrict proves the check above would catch a typo:
// an unknown or misplaced field fails the decoding.
func TestKubernetesDecodingIsStrict(t *testing.T) {
	data, err := os.ReadFile("kubernetes/cronjob-backup.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ from, to string }{
		{"  concurrencyPolicy: Forbid", "  concurencyPolicy: Forbid"},
		{"                  readOnly: true", "                  readonly: true"},
		{"  schedule: \"0 */4 * * *\"", "  schedule: \"0 */4 * * *\"\n  schedule: \"0 * * * *\""},
	} {
		s := string(data)
		if !strings.Contains(s, bad.from) {
			t.Fatalf("cronjob-backup.yaml no longer contains %q", bad.from)
		}
		s = strings.Replace(s, bad.from, bad.to, 1)
		if _, err := decodeK8s("mutated", []byte(s)); err == nil {
			t.Errorf("changing %q to %q still decodes", bad.from, bad.to)
		}
	}
	if _, err := decodeK8s("kind", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")); err == nil {
		t.Error("an unexpected kind decodes")
	}
	var cfg agentConfig
	if err := strictDecode([]byte("data_dir: /x\nwal:\n  rpo_budgte: 30s\n"), &cfg); err == nil {
		t.Error("an agent config with an unknown key decodes")
	}
}
