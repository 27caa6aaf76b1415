#!/usr/bin/env bash
# Builds Helm from the Go module proxy into the shared tools cache, once; prints the binary's path.
#
#   deploy/tools/install-helm.sh          -> .../shop-tools/helm-v3.22.0/helm
#
# There is no prebuilt-binary download here (only package registries are reachable), so Helm is
# compiled with `go install helm.sh/helm/v3/cmd/helm@VERSION`. The first build takes a few
# minutes on two cores; later calls find the binary and return at once. Any failure is one line
# on stderr and a non-zero exit, so callers (the deploy tests) fail with the reason.
set -euo pipefail

HELM_VERSION=${SHOP_HELM_VERSION:-v3.22.0}
TOOLS="${SHOP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shop-tools}"
DIR="$TOOLS/helm-$HELM_VERSION"
BIN="$DIR/helm"

if [ -x "$BIN" ] && "$BIN" version --short >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "error: Go is required to build Helm $HELM_VERSION: go not found" >&2; exit 1; }

mkdir -p "$DIR"
# A lock keeps two concurrent test runs from building into the same folder.
exec 9>"$DIR/.lock"
flock 9
if [ -x "$BIN" ] && "$BIN" version --short >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

tmp=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$DIR/build.log" 2>&1; then
  echo "error: building Helm $HELM_VERSION with go install failed (see $DIR/build.log): $(tail -1 "$DIR/build.log")" >&2
  exit 1
fi
mv "$tmp/helm" "$BIN"
"$BIN" version --short >/dev/null || { echo "error: the Helm binary built in $DIR does not run" >&2; exit 1; }
echo "$BIN"
