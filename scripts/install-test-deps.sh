#!/usr/bin/env bash
# Installs the Debian tools the integration tests drive for real (skopeo, CNCF distribution's
# docker-registry, rpm). Tests that need one skip with a reason when it is missing, so this is
# safe to skip on a machine where you cannot install packages.
set -euo pipefail
PKGS=(skopeo docker-registry rpm db5.3-util zstd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test tools present: ${PKGS[*]}"
  exit 0
fi
if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
  echo "warning: cannot install ${missing[*]} (not root); the tests that need them will skip" >&2
  exit 0
fi
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
