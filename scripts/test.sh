#!/usr/bin/env bash
# Install everything the test suite needs, then run it: lint, types, unit and integration tests.
#
#   bash scripts/test.sh            # what README and .ci/run use
#   bash scripts/test.sh -k parser  # extra arguments go to pytest
#
# As root on a fresh Debian/Ubuntu machine it installs the apt packages, creates .venv, builds
# (or reuses the cached) sshd test nodes, and runs every test. Integration tests need root:
# the test nodes are chroots with their own sshd in their own namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mmdebstrap debootstrap apt-utils dpkg-dev openssh-client openssh-server gnupg rpm
              iproute2 util-linux procps chromium)  # chromium: the dashboard's browser test

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: missing apt packages: ${missing[*]}; run this script as root or install them" >&2
    exit 2
  fi
  echo "== installing apt packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
echo "== installing patchfleet and test dependencies (pinned by constraints.txt)"
.venv/bin/pip install -q -c constraints.txt -e '.[dev,analyst]'

if [[ $(id -u) -eq 0 ]]; then
  echo "== building test nodes (cached under ${PATCHFLEET_TESTNODES_DIR:-/var/cache/patchfleet-testnodes})"
  .venv/bin/python testnodes/testnodes.py build
fi

export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
ulimit -n 8192 2>/dev/null || true

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy (strict on src/)"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $rc
