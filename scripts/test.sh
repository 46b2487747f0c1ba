#!/usr/bin/env bash
# The default test run (unit, integration, conformance, end-to-end); soaks are behind `-m soak`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m pytest -q -p no:cacheprovider --durations=25 "$@"
