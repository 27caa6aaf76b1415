#!/usr/bin/env bash
# Builds actionlint (GitHub Actions workflow checker) from the Go module proxy into the tools
# cache, once; prints the binary's path. Same pattern as install-helm.sh.
set -euo pipefail

ACTIONLINT_VERSION=${SHOP_ACTIONLINT_VERSION:-v1.7.12}
TOOLS="${SHOP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shop-tools}"
DIR="$TOOLS/actionlint-$ACTIONLINT_VERSION"
BIN="$DIR/actionlint"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "error: Go is required to build actionlint $ACTIONLINT_VERSION: go not found" >&2; exit 1; }

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
tmp=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" >"$DIR/build.log" 2>&1; then
  echo "error: building actionlint $ACTIONLINT_VERSION with go install failed (see $DIR/build.log): $(tail -1 "$DIR/build.log")" >&2
  exit 1
fi
mv "$tmp/actionlint" "$BIN"
echo "$BIN"
