#!/usr/bin/env bash
# Installs what the integration tests drive for real: Debian's skopeo, CNCF distribution's
# docker-registry, rpm (+ db5.3-util) and zstd, and the official SARIF schema. Tests that need a
# missing piece skip with a reason, so this is safe to skip where you cannot install packages.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

install_debian_tools() {
  local pkgs=(skopeo docker-registry rpm db5.3-util zstd podman buildah)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "test tools present: ${pkgs[*]}"
    return 0
  fi
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    echo "warning: cannot install ${missing[*]} (not root); the tests that need them will skip" >&2
    return 0
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The official SARIF 2.1.0 schema ships in an npm package; only the schema file is kept, in
# .test-tools/ (gitignored), for the test that checks our SARIF against it.
fetch_sarif_schema() {
  local target="$ROOT/.test-tools/sarif-2.1.0.json"
  [ -f "$target" ] && return 0
  mkdir -p "$ROOT/.test-tools"
  local tmp
  tmp="$(mktemp -d)"
  if (cd "$tmp" && npm pack --silent @microsoft/sarif-multitool-linux@5.7.0 >/dev/null 2>&1 &&
    tar -xzf microsoft-sarif-multitool-linux-5.7.0.tgz package/sarif-2.1.0.json); then
    mv "$tmp/package/sarif-2.1.0.json" "$target"
    echo "SARIF schema: $target"
  else
    echo "warning: could not fetch the SARIF schema; its test will skip" >&2
  fi
  rm -rf "$tmp"
}

install_debian_tools
fetch_sarif_schema
