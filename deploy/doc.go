// Package deploy holds no code: it is the home of the deployment files
// (Prometheus rules, Grafana dashboard, Kubernetes manifests, systemd units)
// and of the tests that validate them, and the operator scripts in
// scripts/ops/, with each ecosystem's own validator (promtool, shellcheck,
// systemd-analyze, strict decoding into the k8s.io/api types).
//
// Under CI=true a missing validator fails its test instead of skipping it;
// .ci/run installs them.
package deploy
