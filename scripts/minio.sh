#!/usr/bin/env bash
# Builds, finds, starts and stops a local MinIO for tests and benchmarks.
#
#   scripts/minio.sh build            build .cache/bin/minio (cached; ~4-7 min cold)
#   scripts/minio.sh path             print the binary's path (builds it if missing)
#   scripts/minio.sh start [DIR]      start on a free 127.0.0.1 port; prints export lines:
#                                       eval "$(scripts/minio.sh start)"
#   scripts/minio.sh stop [DIR]       stop the server started with DIR
#
# Only loopback is used. Credentials are the test ones (miniotest.AccessKey).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# MinIO publishes no semver tags; this pseudo-version is a 2026-02 release
# that builds with the Go in go.mod. The module proxy refuses @latest at times,
# so the version is pinned (and so is what CI tests against).
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
ACCESS_KEY=mementotest
SECRET_KEY=mementotest-secret-key

bin() {
  if [ -n "${MEMENTO_MINIO_BIN:-}" ] && [ -x "$MEMENTO_MINIO_BIN" ]; then echo "$MEMENTO_MINIO_BIN"; return; fi
  if [ -x "$root/.cache/bin/minio" ]; then echo "$root/.cache/bin/minio"; return; fi
  if command -v minio >/dev/null; then command -v minio; return; fi
  build >&2
  echo "$root/.cache/bin/minio"
}

# The binary is cached in .cache/bin of the work tree and, because CI runs in
# a fresh clone each time, also per machine in ~/.cache/memento-minio/VERSION.
build() {
  if [ -x "$root/.cache/bin/minio" ] && [ -f "$root/.cache/bin/minio.version" ] &&
     [ "$(cat "$root/.cache/bin/minio.version")" = "$MINIO_VERSION" ]; then
    return
  fi
  mkdir -p "$root/.cache/bin"
  local machine="${XDG_CACHE_HOME:-$HOME/.cache}/memento-minio/$MINIO_VERSION"
  if [ ! -x "$machine/minio" ]; then
    echo "building minio@$MINIO_VERSION (takes minutes the first time on a machine)" >&2
    mkdir -p "$machine"
    GOBIN="$machine" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
  fi
  cp "$machine/minio" "$root/.cache/bin/minio.tmp" && mv "$root/.cache/bin/minio.tmp" "$root/.cache/bin/minio"
  echo "$MINIO_VERSION" > "$root/.cache/bin/minio.version"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local dir=${1:-$(mktemp -d /tmp/memento-minio.XXXXXX)}
  mkdir -p "$dir/data"
  local b port
  b=$(bin)
  port=$(free_port)
  MINIO_ROOT_USER=$ACCESS_KEY MINIO_ROOT_PASSWORD=$SECRET_KEY MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1 \
    setsid "$b" server --quiet --address "127.0.0.1:$port" --console-address 127.0.0.1:0 "$dir/data" \
    >"$dir/minio.log" 2>&1 < /dev/null &
  echo $! > "$dir/minio.pid"
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$port/minio/health/ready" >/dev/null 2>&1; then
      echo "export MINIO_DIR=$dir MINIO_ENDPOINT=127.0.0.1:$port AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_REGION=us-east-1"
      return
    fi
    sleep 0.1
  done
  echo "minio did not start; log:" >&2
  cat "$dir/minio.log" >&2
  stop "$dir"
  exit 1
}

stop() {
  local dir=${1:-${MINIO_DIR:?give the directory start printed}}
  if [ -f "$dir/minio.pid" ]; then
    local pid
    pid=$(cat "$dir/minio.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/minio.pid"
  fi
}

case "${1:-}" in
  build) build ;;
  path) bin ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
