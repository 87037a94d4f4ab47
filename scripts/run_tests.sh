#!/usr/bin/env bash
# Runs the whole suite. pytest exits 5 when it collected nothing: that is a failure here, loudly.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "ERROR: pytest collected no tests; refusing to report success." >&2
  exit 1
fi
exit "$rc"
