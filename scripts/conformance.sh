#!/usr/bin/env bash
# Runs the OCI Distribution Specification conformance suite (opencontainers/distribution-spec,
# folder conformance/, tag v1.1.1 was used) against `portcullis serve` with authentication on and
# every workflow enabled: pull, push (cross-repository mounts included), content discovery
# (tags and referrers) and content management. Manual only: CI and `npm test` never call it,
# because the suite and its Go dependencies have to be brought in from outside the project.
#
#   scripts/conformance.sh /path/to/distribution-spec        # or OCI_CONFORMANCE_SRC=/path/...
#
# Building the suite needs its Go modules. With a module proxy reachable, `go test -c` fetches
# them. Without one, set CONFORMANCE_GOPATH to a GOPATH tree holding the dependency sources;
# the suite is then built in GOPATH mode (GO111MODULE=off) with /usr/share/gocode (Debian's
# golang-*-dev packages) searched as well. The offline run for the figures used:
#   apt-get install golang-go golang-github-go-resty-resty-dev golang-github-google-uuid-dev \
#     golang-github-opencontainers-go-digest-dev golang-github-asaskevich-govalidator-dev \
#     golang-github-mitchellh-mapstructure-dev golang-github-go-logr-logr-dev \
#     golang-github-google-go-cmp-dev golang-github-google-pprof-dev golang-golang-x-net-dev \
#     golang-golang-x-sys-dev golang-golang-x-text-dev golang-golang-x-tools-dev golang-gopkg-yaml.v3-dev
#   and, under $CONFORMANCE_GOPATH/src/github.com/: onsi/ginkgo/v2 (v2.11.0), onsi/gomega
#   (v1.27.8), bloodorangeio/reggie (v0.6.1), go-task/slim-sprig (commit 52ccab3ef572,
#   the one ginkgo v2.11.0 requires), plus a link
#   go-resty/resty/v2 -> /usr/share/gocode/src/github.com/go-resty/resty.
#
# Other settings (environment): PORTCULLIS_CONFORMANCE_LISTEN (default 127.0.0.1:5099),
# PORTCULLIS_SERVE_ARGS (extra `serve` flags, e.g. --no-gate for a plain registry; the default is
# the server as shipped, gate on), OCI_AUTOMATIC_CROSSMOUNT (default 1: Portcullis mounts without
# `from` when it may; `none` leaves the variable out, so the suite skips both mount-without-from
# specs), and any OCI_* variable of the suite, which is passed through. Reports land in a temp
# folder.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="${1:-${OCI_CONFORMANCE_SRC:-}}"
if [ -z "$SRC" ] || [ ! -d "$SRC/conformance" ]; then
  echo "usage: $0 DISTRIBUTION_SPEC_DIR (a checkout of opencontainers/distribution-spec with conformance/)" >&2
  exit 2
fi
SRC="$(cd "$SRC" && pwd)"
LISTEN="${PORTCULLIS_CONFORMANCE_LISTEN:-127.0.0.1:5099}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-conformance.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK/data"
}
trap cleanup EXIT

# 1. Go (Debian's golang-go is enough for the v1.1 suite).
if ! command -v go >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go
fi

# 2. The suite's test binary.
SUITE_BIN="$WORK/conformance.test"
if [ -n "${CONFORMANCE_GOPATH:-}" ]; then
  pkg="$CONFORMANCE_GOPATH/src/github.com/opencontainers/distribution-spec/conformance"
  rm -rf "$pkg" && mkdir -p "$pkg"
  cp "$SRC"/conformance/*.go "$pkg/"
  (cd "$pkg" && GO111MODULE=off GOPATH="$CONFORMANCE_GOPATH:/usr/share/gocode" go test -c -o "$SUITE_BIN" .)
else
  (cd "$SRC/conformance" && go test -c -o "$SUITE_BIN" .)
fi

# 3. Portcullis, on a fresh data folder with a throwaway admin password. The address must be free:
# another registry there answering 401 would pass the readiness check below and be tested instead.
(cd "$ROOT" && npm run build --silent)
code="$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://$LISTEN/v2/" || true)"
if [ "$code" != 000 ]; then
  echo "something already answers on $LISTEN (HTTP $code); choose a free address with PORTCULLIS_CONFORMANCE_LISTEN" >&2
  exit 1
fi
PASSWORD="conformance-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
PORTCULLIS_ADMIN_PASSWORD="$PASSWORD" PORTCULLIS_LOG_LEVEL="${PORTCULLIS_LOG_LEVEL:-warn}" \
  node "$ROOT/bin/portcullis.js" serve --listen "$LISTEN" --data "$WORK/data" ${PORTCULLIS_SERVE_ARGS:-} >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  code="$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://$LISTEN/v2/" || true)"
  [ "$code" = 401 ] && break
  sleep 0.2
done
if [ "${code:-}" != 401 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "portcullis did not come up on $LISTEN; log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi

# 4. The suite, with authentication (the server challenges with Bearer) and every workflow on.
status=0
(
  cd "$WORK"
  export OCI_ROOT_URL="http://$LISTEN" OCI_USERNAME=admin OCI_PASSWORD="$PASSWORD"
  export OCI_NAMESPACE="${OCI_NAMESPACE:-conformance/test}" OCI_CROSSMOUNT_NAMESPACE="${OCI_CROSSMOUNT_NAMESPACE:-conformance/other}"
  export OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1
  export OCI_HIDE_SKIPPED_WORKFLOWS="${OCI_HIDE_SKIPPED_WORKFLOWS:-0}" OCI_AUTOMATIC_CROSSMOUNT="${OCI_AUTOMATIC_CROSSMOUNT:-1}"
  # The suite tells "unset" from any value, and ${VAR:-1} cannot express unset.
  if [ "$OCI_AUTOMATIC_CROSSMOUNT" = none ]; then unset OCI_AUTOMATIC_CROSSMOUNT; fi
  export OCI_DEBUG="${OCI_DEBUG:-0}" OCI_REPORT_DIR="$WORK"
  "$SUITE_BIN" -test.v >"$WORK/suite.log" 2>&1
) || status=$?

# 5. Summary: the suite's own count line and every failed spec (-a: with OCI_DEBUG=1 the log holds
# blob bytes, and grep would print only "binary file matches").
sed 's/\x1b\[[0-9;]*m//g' "$WORK/suite.log" | grep -aE '^(Ran [0-9]+ of|SUCCESS!|FAIL!|  \[FAIL\])' || true
echo "full log: $WORK/suite.log  reports: $WORK/report.html $WORK/junit.xml  server log: $WORK/server.log"
exit "$status"
